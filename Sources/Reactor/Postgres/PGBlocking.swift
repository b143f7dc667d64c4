import CLibPQ

/// Blocking one-shot SQL for start-up code only (before any loop runs), e.g. creating the embedded
/// cluster's database. Never call it from a loop thread: it waits on the network.
public enum PGBlocking {
    /// Connects with `conninfo`, runs `sql` (simple protocol, no parameters), disconnects.
    public static func execute(conninfo: String, _ sql: String) -> Result<PGResult, PGError> {
        guard let conn = PQconnectdb(conninfo) else { return .failure(.connectFailed("out of memory")) }
        defer { PQfinish(conn) }
        _ = PQsetNoticeReceiver(conn, { _, _ in }, nil)  // keep NOTICEs off stderr
        guard PQstatus(conn) == CONNECTION_OK else {
            return .failure(.connectFailed(PQerrorMessage(conn).map { trimmed(String(cString: $0)) } ?? "unknown error"))
        }
        guard let res = PQexec(conn, sql) else {
            return .failure(.connectionLost(PQerrorMessage(conn).map { trimmed(String(cString: $0)) } ?? "unknown error"))
        }
        defer { PQclear(res) }
        switch PQresultStatus(res) {
        case PGRES_TUPLES_OK, PGRES_COMMAND_OK, PGRES_EMPTY_QUERY:
            var rows: [[String?]] = []
            let nr = PQntuples(res), nc = PQnfields(res)
            var cols: [String] = []
            for j in 0..<nc { cols.append(PQfname(res, j).map { String(cString: $0) } ?? "?column?") }
            for i in 0..<nr {
                rows.append((0..<nc).map { j in
                    PQgetisnull(res, i, j) == 1 ? nil : PQgetvalue(res, i, j).map { String(cString: $0) }
                })
            }
            return .success(PGResult(columns: cols, rows: rows, affectedRows: Int(nr)))
        default:
            let state = PQresultErrorField(res, Int32(UInt8(ascii: "C"))).map { String(cString: $0) } ?? "XX000"
            let msg = PQresultErrorField(res, Int32(UInt8(ascii: "M"))).map { String(cString: $0) } ?? "unknown error"
            return .failure(.server(sqlState: state, message: msg))
        }
    }
}
