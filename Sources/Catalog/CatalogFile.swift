import Foundation
import Providers
import Yams

/// Reads `models.yaml` (docs/catalog.md) into a `ModelCatalog`, checking everything at once so a
/// bad file is refused whole, with one line naming the file, line and field. Runs at start-up
/// and on SIGHUP, never on a worker's loop.
public enum CatalogFile {
    /// What the environment supplies to every deployment: the variables keys are read from, and
    /// the `anthropic-version` an Anthropic deployment sends when it names none.
    public struct Context: Sendable {
        public var environment: [String: String]
        public var anthropicVersion: String

        public init(environment: [String: String], anthropicVersion: String = ProviderConfig.defaultAnthropicVersion) {
            self.environment = environment
            self.anthropicVersion = anthropicVersion
        }
    }

    public static func load(path: String, context: Context, version: Int = 1) -> Result<ModelCatalog, CatalogLoadError> {
        let text: String
        do {
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            guard let s = String(data: data, encoding: .utf8) else {
                return .failure(CatalogLoadError(file: path, line: 0, field: "", message: "is not UTF-8 text"))
            }
            text = s
        } catch {
            return .failure(CatalogLoadError(file: path, line: 0, field: "", message: "cannot be read: \(readFailure(error))"))
        }
        return parse(yaml: text, file: path, context: context, version: version)
    }

    public static func parse(yaml: String, file: String, context: Context, version: Int = 1) -> Result<ModelCatalog, CatalogLoadError> {
        let root: Node
        do {
            guard let r = try Yams.compose(yaml: yaml) else {
                return .failure(CatalogLoadError(file: file, line: 0, field: "models", message: "is required (the file is empty)"))
            }
            root = r
        } catch let e as YamlError {
            return .failure(syntaxError(e, file: file))
        } catch {
            return .failure(CatalogLoadError(file: file, line: 0, field: "", message: "is not valid YAML: \(error)"))
        }
        do throws(CatalogLoadError) {
            return .success(try CatalogReader(file: file, context: context).read(root, version: version))
        } catch {
            return .failure(error)
        }
    }

    static func syntaxError(_ e: YamlError, file: String) -> CatalogLoadError {
        switch e {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
             .composer(let context, let problem, let mark, _):
            let what = [context?.text, problem].compactMap { $0 }.filter { !$0.isEmpty }.joined(separator: " ")
            return CatalogLoadError(file: file, line: mark.line, field: "", message: "is not valid YAML: \(what)")
        case .duplicatedKeysInMapping(let duplicates, let context):
            return CatalogLoadError(file: file, line: context.mark.line, field: duplicates.joined(separator: ", "),
                                    message: "is given twice in one mapping")
        default:
            let oneLine = "\(e)".split(separator: "\n").first.map(String.init) ?? "\(e)"
            return CatalogLoadError(file: file, line: 0, field: "", message: "is not valid YAML: \(oneLine)")
        }
    }

    static func readFailure(_ error: Error) -> String {
        let ns = error as NSError
        if let posix = ns.userInfo[NSUnderlyingErrorKey] as? NSError, posix.domain == NSPOSIXErrorDomain {
            return String(cString: strerror(Int32(posix.code)))
        }
        return ns.localizedDescription
    }
}
