import Providers
import Reactor
import Storage

/// `chatrelay keys create|list|revoke|rotate`: client keys in the database, for operators.
/// Results go to stdout (a new secret alone on the last line, for `| tail -1`), errors to stderr.
enum KeysCommand {
    static let usage = """
    usage: chatrelay keys create --name NAME [--rpm N] [--tpm N] [--max-streams N]
                                 [--budget-usd X --budget-period day|month] [--models a,b]
                                 [--cache-ttl-s N]
           chatrelay keys list [--json]
           chatrelay keys revoke ID|NAME
           chatrelay keys rotate ID|NAME
    Keys are kept in the server's database: DATABASE_URL, else the embedded PostgreSQL in
    CHAT_DATA_DIR (the server's flags --data-dir, --database-url and --models-file apply here too).
    Only the SHA-256 of a key is stored: create and rotate print the secret once, alone on the
    last line, so `chatrelay keys create --name ci | tail -1` is the key.
    Limits: --rpm 1..10000000 requests a minute, --tpm 1..10000000000 tokens a minute,
    --max-streams 1..1000000 answers at once, --budget-usd (a decimal > 0) per --budget-period,
    --models the catalog's model names the key may use (default: all).
    --cache-ttl-s 1..2592000: the key's requests with temperature 0 use the response cache.
    Exit status: 0 done; 2 bad input (nothing written); 1 the database failed.
    """

    static func run(_ arguments: [String]) -> Int32 {
        do {
            let args = try KeysArguments.parse(arguments)
            if args.action == .help {
                Console.out(usage)
                return 0
            }
            try perform(args)
            return 0
        } catch {
            Environment.printError("chatrelay keys: \(error.message)")
            if error.status == 2 && arguments.isEmpty { Environment.printError(usage) }
            return error.status
        }
    }

    private static func perform(_ args: KeysArguments) throws(KeysFailure) {
        let config: Config
        do {
            config = try ConfigLoader.load(arguments: args.configArguments, environment: Environment.current(),
                                           dotEnv: Environment.readFile(".env"))
        } catch {
            throw .input(error.description)
        }
        // Everything the input can be wrong about is checked before the database is touched.
        var spec: KeySpec?
        if case .create(let flags) = args.action {
            let catalog: ModelCatalog
            switch CatalogLoading.load(config, version: 1) {
            case .failure(let e): throw .input(e.description)
            case .success(let c): catalog = c
            }
            do {
                spec = try KeySpec(flags: flags, isKnownModel: { catalog.lookup($0) != nil })
            } catch {
                throw .input(error.message)
            }
        }
        let session: KeysSession
        switch KeysSession.open(config) {
        case .failure(let f): throw f
        case .success(let s): session = s
        }
        defer { session.close() }
        switch args.action {
        case .help: return
        case .create: if let spec { try create(spec, session) }
        case .list(let json): try list(json: json, session)
        case .revoke(let ref): try revoke(ref, session)
        case .rotate(let ref): try rotate(ref, session)
        }
    }

    // MARK: Actions

    private static func create(_ spec: KeySpec, _ s: KeysSession) throws(KeysFailure) {
        let secret = KeySecret.generate()
        let key = try s.wait { s.store.create(name: spec.name, keyHash: secret.hash, prefix: secret.prefix, limits: spec.limits, completion: $0) }
            .get(or: "cannot create the key")
        Console.out("created key '\(key.name)'")
        describe(key)
        announce(secret.secret)
    }

    private static func list(json: Bool, _ s: KeysSession) throws(KeysFailure) {
        let keys = try s.wait { s.store.list(completion: $0) }.get(or: "cannot list the keys")
        if json {
            Console.out(String(decoding: KeyJSON.list(keys), as: UTF8.self))
        } else {
            Console.out(KeysTable.render(keys))
        }
    }

    private static func revoke(_ ref: String, _ s: KeysSession) throws(KeysFailure) {
        let found = try find(ref, s)
        guard found.revokedAt == nil else {
            Console.out("key '\(found.name)' (\(found.id)) was already revoked at \(found.revokedAt ?? "")")
            return
        }
        guard let key = try s.wait({ s.store.revoke(id: found.id, completion: $0) }).get(or: "cannot revoke the key") else {
            throw .input("no key '\(ref)'")
        }
        Console.out("revoked key '\(key.name)' (\(key.id)) at \(key.revokedAt ?? "")")
    }

    private static func rotate(_ ref: String, _ s: KeysSession) throws(KeysFailure) {
        let found = try find(ref, s)
        guard found.revokedAt == nil else { throw .input("key '\(found.name)' (\(found.id)) is revoked; create a new one instead") }
        let secret = KeySecret.generate()
        let rotated = try s.wait { s.store.rotate(id: found.id, keyHash: secret.hash, prefix: secret.prefix, completion: $0) }
            .get(or: "cannot rotate the key")
        guard let key = rotated else { throw .input("key '\(found.name)' (\(found.id)) was revoked meanwhile; nothing rotated") }
        Console.out("rotated key '\(key.name)': the old secret no longer works")
        describe(key)
        announce(secret.secret)
    }

    /// The key with this id, else the one (not revoked) with this name.
    private static func find(_ ref: String, _ s: KeysSession) throws(KeysFailure) -> KeyRecord {
        guard let key = try s.wait({ s.store.find(ref, completion: $0) }).get(or: "cannot look the key up") else {
            throw .input("no key '\(ref)' (give an id, or the name of a key that is not revoked)")
        }
        return key
    }

    // MARK: Output

    private static func describe(_ k: KeyRecord) {
        Console.out("  id:      \(k.id)")
        Console.out("  prefix:  \(k.prefix)")
        Console.out("  limits:  \(KeysTable.limits(k.limits))")
    }

    /// The secret, alone on the last line of stdout; the reminder goes to stderr so a pipe keeps
    /// only the key.
    private static func announce(_ secret: String) {
        Environment.printError("chatrelay keys: the secret below is shown only now; it is not stored")
        Console.out(secret)
    }
}

fileprivate extension Result where Failure == StoreError {
    /// The value, or a KeysFailure: a refusal the store explains (2) or a database failure (1).
    func get(or what: String) throws(KeysFailure) -> Success {
        switch self {
        case .success(let v): return v
        case .failure(.invalidArgument(let m)): throw .input(m)
        case .failure(let e): throw .database("\(what): \(e)")
        }
    }
}
