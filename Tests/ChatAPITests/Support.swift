import Foundation
import Testing

/// The mock upstream and the default ChatRelay every test that needs no special setting shares.
enum Shared {
    static let mock: Result<MockUpstream, Error> = Result { try MockUpstream() }
    static let relay: Result<Relay, Error> = Result { try Relay(mock: try mock.get()) }
}

/// Every ChatAPI end-to-end suite runs one at a time: several watch the shared mock's stream count,
/// one stops and restarts the database, and the machine has two cores.
@Suite(.serialized, .timeLimit(.minutes(3))) enum ChatAPIEndToEnd {}

func uuid() -> String { UUID().uuidString.lowercased() }

extension Dictionary where Key == String, Value == Any {
    func str(_ k: String) -> String? { self[k] as? String }
    func int(_ k: String) -> Int? { self[k] as? Int }
    func obj(_ k: String) -> [String: Any]? { self[k] as? [String: Any] }
}
