import JSONCore
import Providers
import Storage

/// What a new key is to be: its name and limits, checked the same way whether they come from
/// `chatrelay keys create` flags or from an admin API body, so both refuse the same inputs with
/// the same messages. Nothing is written until a spec exists.
struct KeySpec: Equatable {
    var name: String
    var limits: KeyLimits

    static let nameMaxCharacters = 100
    static let rpmRange: ClosedRange<Int> = 1...10_000_000
    static let tpmRange: ClosedRange<Int> = 1...10_000_000_000
    static let maxStreamsRange: ClosedRange<Int> = 1...1_000_000
    static let budgetMaxWholeUSD = 1_000_000
    static let budgetMaxDecimals = 12
    static let maxModels = 100

    /// The fields a spec has, by their JSON names (the CLI flag is `--` + the name with `-`).
    enum Field: String, CaseIterable {
        case name, rpm, tpm
        case maxStreams = "max_streams"
        case budgetUSD = "budget_usd"
        case budgetPeriod = "budget_period"
        case models
        case cacheTTL = "cache_ttl_s"

        var flag: String { "--" + String(rawValue.map { $0 == "_" ? "-" : $0 }) }
        var range: ClosedRange<Int>? {
            switch self {
            case .rpm: return KeySpec.rpmRange
            case .tpm: return KeySpec.tpmRange
            case .maxStreams: return KeySpec.maxStreamsRange
            case .cacheTTL: return 1...CachePolicy.maxTTLSeconds
            default: return nil
            }
        }
    }

    /// How the spec's messages name a field: `rpm` for the API, `--rpm` for the CLI.
    enum Naming {
        case json, flags

        func label(_ f: Field) -> String { self == .json ? f.rawValue : f.flag }
    }

    /// Checks the fields one by one (each message names its field), then how they go together.
    init(name: String?, rpm: Int?, tpm: Int?, maxStreams: Int?, budgetUSD: String?, budgetPeriod: String?,
         models: [String]?, cacheTTL: Int? = nil, naming: Naming, isKnownModel: (String) -> Bool) throws(ClientError) {
        self.name = try KeySpec.checkName(name, naming)
        var l = KeyLimits()
        l.rpm = try KeySpec.checkRange(rpm, .rpm, naming)
        l.tpm = try KeySpec.checkRange(tpm, .tpm, naming)
        l.maxStreams = try KeySpec.checkRange(maxStreams, .maxStreams, naming)
        if let b = budgetUSD { l.budgetUSD = try KeySpec.checkBudget(b, naming) }
        if let p = budgetPeriod { l.budgetPeriod = try KeySpec.checkPeriod(p, naming) }
        if l.budgetUSD != nil && l.budgetPeriod == nil {
            throw .invalid("\(naming.label(.budgetPeriod)) (day or month) is required with \(naming.label(.budgetUSD))",
                           param: Field.budgetPeriod.rawValue)
        }
        if l.budgetPeriod != nil && l.budgetUSD == nil {
            throw .invalid("\(naming.label(.budgetPeriod)) needs \(naming.label(.budgetUSD))", param: Field.budgetPeriod.rawValue)
        }
        if let m = models { l.models = try KeySpec.checkModels(m, naming, isKnownModel) }
        l.cacheTTLSeconds = try KeySpec.checkRange(cacheTTL, .cacheTTL, naming)
        limits = l
    }

    // MARK: Field checks

    static func checkName(_ name: String?, _ naming: Naming) throws(ClientError) -> String {
        let label = naming.label(.name)
        guard let name, !name.isEmpty else { throw .invalid("\(label) is required", param: Field.name.rawValue) }
        // Counted in code points, as JSON Schema's maxLength counts them.
        guard name.unicodeScalars.count <= nameMaxCharacters else {
            throw .invalid("\(label) must be 1 to \(nameMaxCharacters) characters", param: Field.name.rawValue)
        }
        // Names show in tables and logs: a newline or escape sequence would forge lines there.
        if name.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
            throw .invalid("\(label) must not contain control characters", param: Field.name.rawValue)
        }
        return name
    }

    static func checkRange(_ value: Int?, _ field: Field, _ naming: Naming) throws(ClientError) -> Int? {
        guard let value else { return nil }
        guard let range = field.range, range.contains(value) else { throw rangeError(field, naming) }
        return value
    }

    static func rangeError(_ field: Field, _ naming: Naming) -> ClientError {
        let r = field.range ?? 1...1
        return .invalid("\(naming.label(field)) must be an integer from \(r.lowerBound) to \(r.upperBound)", param: field.rawValue)
    }

    /// A plain decimal (`12`, `12.50`; no sign, exponent or spaces) greater than 0, at most
    /// `budgetMaxWholeUSD`, with at most `budgetMaxDecimals` decimals. The text is kept as given
    /// (PostgreSQL's numeric keeps its scale) except for leading zeros.
    static func checkBudget(_ text: String, _ naming: Naming) throws(ClientError) -> String {
        let label = naming.label(.budgetUSD)
        let param = Field.budgetUSD.rawValue
        let parts = text.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        let isDigits = { (s: Substring) in !s.isEmpty && s.utf8.allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") } }
        guard let wholeText = parts.first, isDigits(wholeText), parts.count == 1 || isDigits(parts[1]) else {
            if text.hasPrefix("-") { throw .invalid("\(label) must be greater than 0", param: param) }
            throw .invalid("\(label) must be a plain decimal number of US dollars such as 12.50", param: param)
        }
        let fraction = parts.count == 2 ? parts[1] : ""
        guard fraction.utf8.count <= budgetMaxDecimals else {
            throw .invalid("\(label) must have at most \(budgetMaxDecimals) decimal places", param: param)
        }
        var whole = String(wholeText.drop { $0 == "0" })
        if whole.isEmpty { whole = "0" }
        let isZero = whole == "0" && fraction.utf8.allSatisfy { $0 == UInt8(ascii: "0") }
        guard !isZero else { throw .invalid("\(label) must be greater than 0", param: param) }
        let limit = String(budgetMaxWholeUSD)
        let tooBig = whole.count > limit.count
            || (whole.count == limit.count && (whole > limit || (whole == limit && !fraction.utf8.allSatisfy { $0 == UInt8(ascii: "0") })))
        guard !tooBig else { throw .invalid("\(label) must be at most \(budgetMaxWholeUSD)", param: param) }
        return fraction.isEmpty ? whole : "\(whole).\(fraction)"
    }

    static func checkPeriod(_ text: String, _ naming: Naming) throws(ClientError) -> BudgetPeriod {
        guard let p = BudgetPeriod(rawValue: text) else {
            throw .invalid("\(naming.label(.budgetPeriod)) must be day or month", param: Field.budgetPeriod.rawValue)
        }
        return p
    }

    /// Names the catalog serves (exact names or wildcard names such as `openai/*`), in the order
    /// given, repeats dropped.
    static func checkModels(_ names: [String], _ naming: Naming, _ isKnown: (String) -> Bool) throws(ClientError) -> [String] {
        let label = naming.label(.models)
        let param = Field.models.rawValue
        guard !names.isEmpty else { throw .invalid("\(label) must name at least one model (leave it out to allow every model)", param: param) }
        guard names.count <= maxModels else { throw .invalid("\(label) may name at most \(maxModels) models", param: param) }
        var out: [String] = []
        for (i, n) in names.enumerated() {
            let valid = !n.isEmpty && n.utf8.count <= ModelNames.maxBytes
                && n.utf8.allSatisfy { ModelNames.isPublicNameByte($0) || $0 == UInt8(ascii: "*") }
            guard valid else { throw .invalid("\(label) entry \(i + 1) must be a model name", param: "\(param)[\(i)]") }
            guard isKnown(n) else { throw .invalid("unknown model '\(n)' in \(label)", param: "\(param)[\(i)]") }
            if !out.contains(n) { out.append(n) }
        }
        return out
    }
}

// MARK: From a JSON body

extension KeySpec {
    /// A spec from an admin API body (a JSON object). `raw` is the body's bytes, so a number given
    /// for `budget_usd` keeps the exact digits written (a Double would turn 0.1 into 0.1000…0055).
    init(json body: JSONValue, raw: [UInt8], isKnownModel: (String) -> Bool) throws(ClientError) {
        guard let members = body.object else { throw .invalid("request body must be a JSON object", param: nil) }
        for m in members where Field(rawValue: m.key) == nil {
            let known = Field.allCases.map(\.rawValue).joined(separator: ", ")
            throw .invalid("unknown field '\(m.key)' (a key has \(known))", param: m.key)
        }
        let f = Fields(object: body)
        try self.init(name: try f.string(Field.name.rawValue, required: true, maxBytes: 4096),
                      rpm: try KeySpec.jsonInt(body, .rpm), tpm: try KeySpec.jsonInt(body, .tpm),
                      maxStreams: try KeySpec.jsonInt(body, .maxStreams),
                      budgetUSD: try KeySpec.jsonBudget(body, raw: raw),
                      budgetPeriod: try f.string(Field.budgetPeriod.rawValue, maxBytes: 16),
                      models: try KeySpec.jsonModels(body), cacheTTL: try KeySpec.jsonInt(body, .cacheTTL),
                      naming: .json, isKnownModel: isKnownModel)
    }

    /// An integer member; fractions, strings and numbers past Int's range are refused naming it.
    static func jsonInt(_ body: JSONValue, _ field: Field) throws(ClientError) -> Int? {
        guard let v = body[field.rawValue], !v.isNull else { return nil }
        guard let i = v.int, let n = Int(exactly: i) else { throw rangeError(field, .json) }
        return n
    }

    static func jsonBudget(_ body: JSONValue, raw: [UInt8]) throws(ClientError) -> String? {
        let name = Field.budgetUSD.rawValue
        guard let v = body[name], !v.isNull else { return nil }
        if let s = v.string { return s }
        guard v.double != nil else {
            throw .invalid("budget_usd must be a decimal number or a string such as \"12.50\"", param: name)
        }
        guard let text = RawJSONMember.numberText(raw, name) else {
            throw .invalid("budget_usd must be a plain decimal number of US dollars such as 12.50", param: name)
        }
        return text
    }

    static func jsonModels(_ body: JSONValue) throws(ClientError) -> [String]? {
        let name = Field.models.rawValue
        guard let v = body[name], !v.isNull else { return nil }
        guard let items = v.array else { throw .invalid("models must be an array of model names", param: name) }
        var out: [String] = []
        for (i, item) in items.enumerated() {
            guard let s = item.string else { throw .invalid("models[\(i)] must be a string", param: "\(name)[\(i)]") }
            out.append(s)
        }
        return out
    }
}

/// The source text of a top-level member's number, read with the scanner (the parsed tree keeps
/// only its value). The first member of that name, as `JSONValue`'s subscript takes.
enum RawJSONMember {
    static func numberText(_ raw: [UInt8], _ member: String) -> String? {
        raw.withUnsafeBytes { buf -> String? in
            var s = JSONScanner(buf)
            do {
                try s.beginObject()
                while let key = try s.nextKey() {
                    guard key.string == member else { try s.skipValue(); continue }
                    guard try s.nextKind() == .number else { return nil }
                    let start = s.offset
                    try s.skipValue()
                    return String(decoding: buf[start..<s.offset], as: UTF8.self)
                }
            } catch {
                return nil
            }
            return nil
        }
    }
}
