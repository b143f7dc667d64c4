/// One statement to run: SQL with `$1…$n` text parameters, optionally as a named prepared statement.
/// Extended protocol only (docs/reactor-notes.md D6): one statement per query, no COPY.
public struct PGQuery: Sendable, Equatable {
    public var sql: String
    public var params: [String?]
    /// When set, the statement is prepared once per connection under this name (`PQsendPrepare`)
    /// and then run with `PQsendQueryPrepared`. The same name must always mean the same SQL.
    public var preparedName: String?

    public init(_ sql: String, _ params: [String?] = [], prepared name: String? = nil) {
        self.sql = sql
        self.params = params
        self.preparedName = name
    }
}

/// A statement's result, converted to Swift values (text format).
public struct PGResult: Sendable, Equatable {
    public var columns: [String]
    /// Row-major text values; SQL NULL is nil.
    public var rows: [[String?]]
    /// Rows returned or affected (`PQcmdTuples`, or the row count for plain SELECTs).
    public var affectedRows: Int

    public init(columns: [String] = [], rows: [[String?]] = [], affectedRows: Int = 0) {
        self.columns = columns
        self.rows = rows
        self.affectedRows = affectedRows
    }

    /// Index of a column by name.
    public func column(_ name: String) -> Int? { columns.firstIndex(of: name) }

    /// The value at `row`, `name`, or nil when NULL or when the column does not exist.
    public func value(_ row: Int, _ name: String) -> String? {
        guard row >= 0, row < rows.count, let c = column(name) else { return nil }
        return rows[row][c]
    }
}

/// Everything that can go wrong with a query, as a value.
public enum PGError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The server rejected the statement (the connection stays usable).
    case server(sqlState: String, message: String)
    /// Pipeline: skipped because an earlier statement in the same batch failed; the batch was rolled back.
    case aborted
    /// Could not connect (or the connect attempt timed out).
    case connectFailed(String)
    /// The connection broke while the query was in flight (server gone, EOF, socket error).
    case connectionLost(String)
    /// No answer from the server within `milliseconds`; the connection was dropped.
    case timeout(milliseconds: Int)
    /// The pool's wait queue is full: answer 503 at once rather than queue without bound.
    case overloaded
    /// No connection to the database is up right now (PostgreSQL down; reconnecting in the background).
    case unavailable(String)
    /// The pool or connection was closed by its owner.
    case closed
    /// A local libpq failure that is not the server's answer (e.g. a send failed).
    case client(String)

    /// SQLSTATE when the server sent one.
    public var sqlState: String? {
        if case .server(let s, _) = self { return s }
        return nil
    }

    public var description: String {
        switch self {
        case .server(let s, let m): return "PostgreSQL error \(s): \(m)"
        case .aborted: return "statement skipped: an earlier statement in the pipeline failed and the batch was rolled back"
        case .connectFailed(let m): return "cannot connect to PostgreSQL: \(m)"
        case .connectionLost(let m): return "PostgreSQL connection lost: \(m)"
        case .timeout(let ms): return "PostgreSQL did not answer within \(ms) ms; connection dropped"
        case .overloaded: return "database queue is full"
        case .unavailable(let m): return "database unavailable: \(m)"
        case .closed: return "database connection closed"
        case .client(let m): return "libpq: \(m)"
        }
    }
}

/// How to reach PostgreSQL and how long to wait for it.
public struct PGConfiguration: Sendable {
    /// A `postgresql://` URL or a `key=value` conninfo string.
    public var conninfo: String
    /// Sent at connect as `options=-c statement_timeout=…` so the server cancels runaway statements
    /// itself (SQLSTATE 57014, connection kept). 0 disables it.
    public var statementTimeoutMillis: Int
    /// Our own loop timer per operation: when the server has not answered by then, the operation
    /// fails with `.timeout` and the connection is dropped (it may be wedged). 0 disables it.
    /// Defaults to the statement timeout plus a grace period.
    public var queryTimeoutMillis: Int
    /// Upper bound for one connect attempt (`PQconnectPoll` has no timeout of its own when driven by us).
    public var connectTimeoutMillis: Int
    /// `application_name` shown in `pg_stat_activity`.
    public var applicationName: String

    public init(conninfo: String, statementTimeoutMillis: Int = 30_000, queryTimeoutMillis: Int? = nil,
                connectTimeoutMillis: Int = 5_000, applicationName: String = "chatrelay") {
        self.conninfo = conninfo
        self.statementTimeoutMillis = statementTimeoutMillis
        self.queryTimeoutMillis = queryTimeoutMillis ?? (statementTimeoutMillis > 0 ? statementTimeoutMillis + 5_000 : 0)
        self.connectTimeoutMillis = connectTimeoutMillis
        self.applicationName = applicationName
    }
}
