import Testing
@testable import ChatAPI

/// How a request's `Authorization` header and the settings' values are read: the scheme is
/// case-insensitive, spaces and tabs around a key or a setting do not matter, anything else does.
@Suite struct AuthHeaderTests {
    let keys = APIKeys(keys: ["sk-one", "sk-twö"])

    @Test func bearerKeysMatchWhateverTheSpacingAndSchemeCase() {
        let owner = keys.owner(forAuthorization: "Bearer sk-one")
        #expect(owner != nil)
        #expect(keys.owner(forAuthorization: "bearer sk-one") == owner)
        #expect(keys.owner(forAuthorization: "Bearer \t sk-one \t") == owner)
        #expect(keys.owner(forAuthorization: "Bearer sk-twö ") != nil)
        #expect(keys.owner(forAuthorization: "Bearer sk-twö") != owner)
    }

    @Test func otherKeysSchemesAndBlankValuesAreRefused() {
        for header in [nil, "", "Bearer", "Bearer ", "Bearer    ", "Basic sk-one", "Bearer sk-on", "Bearer sk-one2",
                       "Bearer s k-one", "Bearersk-one"] as [String?] {
            #expect(keys.owner(forAuthorization: header) == nil, "\(header ?? "nil")")
        }
    }

    @Test func trimmingTakesOnlySpacesAndTabsFromBothEnds() {
        #expect("  a b\t".trimmingSpaces == "a b")
        #expect("\t\t".trimmingSpaces == "")
        #expect("".trimmingSpaces == "")
        #expect(" é ".trimmingSpaces == "é")
        #expect("x\n".trimmingSpaces == "x\n")
        #expect("  key = value ".split(separator: "=").map { $0.trimmingSpaces } == ["key", "value"])
    }
}
