/// Why a catalog file was refused: one line naming the file, the line and the field, so an
/// operator can fix it without reading code.
public struct CatalogLoadError: Error, CustomStringConvertible, Sendable, Equatable {
    public let file: String
    /// 1-based; 0 when the problem is the file as a whole.
    public let line: Int
    /// A path into the file such as `models[2].deployments[0].price.input_per_mtok`.
    public let field: String
    public let message: String

    public init(file: String, line: Int, field: String, message: String) {
        self.file = file
        self.line = line
        self.field = field
        self.message = message
    }

    public var description: String {
        let place = line > 0 ? "\(file):\(line)" : file
        return field.isEmpty ? "\(place): \(message)" : "\(place): \(field): \(message)"
    }
}
