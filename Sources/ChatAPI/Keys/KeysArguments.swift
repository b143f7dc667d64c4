/// The command line of `chatrelay keys ...`, taken apart: the action and its operands, and the
/// server's own flags (`--data-dir`, `--database-url`, `--models-file`, ...) for ConfigLoader.
struct KeysArguments {
    enum Action: Equatable {
        case help
        /// The create flags by field, as typed (KeySpec checks them).
        case create([KeySpec.Field: String])
        case list(json: Bool)
        case revoke(String)
        case rotate(String)
    }

    var action: Action
    var configArguments: [String] = []

    static func parse(_ args: [String]) throws(KeysFailure) -> KeysArguments {
        if args.contains("--help") || args.contains("-h") || args.first == "help" { return KeysArguments(action: .help) }
        guard let command = args.first else { throw .input("a subcommand is required: create, list, revoke or rotate") }
        guard ["create", "list", "revoke", "rotate"].contains(command) else {
            throw .input("unknown subcommand '\(command)': use create, list, revoke or rotate")
        }
        var flags: [KeySpec.Field: String] = [:]
        var json = false
        var operands: [String] = []
        var config: [String] = []
        var i = 1
        while i < args.count {
            let arg = args[i]
            i += 1
            guard arg.hasPrefix("-") && arg.count > 1 else { operands.append(arg); continue }
            var name = arg
            var value: String?
            if let eq = arg.firstIndex(of: "=") {
                name = String(arg[..<eq])
                value = String(arg[arg.index(after: eq)...])
            }
            func takeValue() throws(KeysFailure) -> String {
                if let value { return value }
                guard i < args.count else { throw .input("\(name) needs a value") }
                i += 1
                return args[i - 1]
            }
            if ConfigLoader.flags[name] != nil {
                config += [name, try takeValue()]
            } else if command == "create", let field = KeySpec.Field.allCases.first(where: { $0.flag == name }) {
                guard flags[field] == nil else { throw .input("\(name) is given twice") }
                flags[field] = try takeValue()
            } else if command == "list" && name == "--json" && value == nil {
                json = true
            } else {
                throw .input("unknown option \(name) for 'keys \(command)' (see chatrelay keys --help)")
            }
        }
        let action: Action
        switch command {
        case "create":
            guard operands.isEmpty else { throw .input("unexpected argument '\(operands[0])': create takes only options") }
            action = .create(flags)
        case "list":
            guard operands.isEmpty else { throw .input("unexpected argument '\(operands[0])': list takes only --json") }
            action = .list(json: json)
        default:
            guard operands.count == 1, let ref = operands.first, !ref.isEmpty else {
                throw .input("keys \(command) takes one key: its id or its name")
            }
            action = command == "revoke" ? .revoke(ref) : .rotate(ref)
        }
        return KeysArguments(action: action, configArguments: config)
    }
}

extension KeySpec {
    /// A spec from `keys create` flags, checked as an API body is (messages name the flags).
    init(flags: [Field: String], isKnownModel: (String) -> Bool) throws(ClientError) {
        func int(_ f: Field) throws(ClientError) -> Int? {
            guard let text = flags[f] else { return nil }
            guard let n = Int(text) else { throw KeySpec.rangeError(f, .flags) }
            return n
        }
        // `--models a,b`: spaces around the commas are allowed, empty items are not names.
        let models = flags[.models].map { list in
            list.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingSpaces }.filter { !$0.isEmpty }
        }
        try self.init(name: flags[.name], rpm: try int(.rpm), tpm: try int(.tpm), maxStreams: try int(.maxStreams),
                      budgetUSD: flags[.budgetUSD], budgetPeriod: flags[.budgetPeriod], models: models,
                      cacheTTL: try int(.cacheTTL), naming: .flags, isKnownModel: isKnownModel)
    }
}
