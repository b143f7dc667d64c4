import Reactor

/// Limits and timeouts of the HTTP/1.1 server, from configuration.
public struct HTTPServerConfig: Sendable {
    public var parserLimits: HTTPParserLimits
    /// A client that has not sent a whole request head by then is dropped (slowloris).
    public var headerTimeoutSeconds: Double
    /// Keep-alive connections with no request in progress are closed after this.
    public var idleTimeoutSeconds: Double
    /// Per worker; past it a new connection gets 503 and is closed.
    public var maxConnections: Int
    public var connectionLimits: TCPConnectionLimits
    /// Sent in the `Server` header.
    public var serverName: String

    public init(parserLimits: HTTPParserLimits = HTTPParserLimits(), headerTimeoutSeconds: Double = 10,
                idleTimeoutSeconds: Double = 60, maxConnections: Int = 65536,
                connectionLimits: TCPConnectionLimits = TCPConnectionLimits(), serverName: String = "chatrelay") {
        self.parserLimits = parserLimits
        self.headerTimeoutSeconds = headerTimeoutSeconds
        self.idleTimeoutSeconds = idleTimeoutSeconds
        self.maxConnections = maxConnections
        self.connectionLimits = connectionLimits
        self.serverName = serverName
    }
}
