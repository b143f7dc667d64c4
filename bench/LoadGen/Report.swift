#if canImport(Glibc)
import Glibc
#endif
import JSONCore
import Reactor

/// The human summary and the JSON file of one run.
struct Report {
    let o: Options
    let r: Runner

    var elapsed: Double { Double(r.endedAt &- r.startedAt) / 1e9 }
    var harnessCPU: Double { Double(r.harnessCPUAfter &- r.harnessCPUBefore) / 1e9 }
    var serverCPU: Double {
        var s = 0.0
        for (b, a) in zip(r.serverBefore, r.serverAfter) where a.cpuNanos >= b.cpuNanos { s += Double(a.cpuNanos - b.cpuNanos) / 1e9 }
        return s
    }

    static let percentiles: [Double] = [0, 10, 25, 50, 75, 90, 95, 99, 99.9, 99.99, 100]

    func histogram(_ w: inout JSONWriter, _ name: String, _ h: LatencyHistogram) {
        w.key(name)
        w.beginObject()
        w.field("count", Int(h.count))
        w.field("p50", Int(h.percentile(50)))
        w.field("p90", Int(h.percentile(90)))
        w.field("p99", Int(h.percentile(99)))
        w.field("p999", Int(h.percentile(99.9)))
        w.field("max", Int(h.maxValue))
        w.field("mean", (h.mean * 10).rounded() / 10)
        w.key("percentiles")
        w.beginArray()
        if h.count > 0 {
            for p in Report.percentiles {
                w.beginArray()
                w.double(p)
                w.int(Int(h.percentile(p)))
                w.endArray()
            }
        }
        w.endArray()
        w.endObject()
    }

    func sample(_ w: inout JSONWriter, _ s: ProcSample) {
        w.beginObject()
        w.field("pid", Int(s.pid))
        w.field("alive", s.alive)
        w.field("cpu_s", Double(s.cpuNanos) / 1e9)
        w.field("rss_bytes", Int(s.rssBytes))
        w.field("fds", s.fds)
        w.endObject()
    }

    func json() -> [UInt8] {
        let st = r.stats
        var w = JSONWriter(capacity: 8192)
        w.beginObject()
        w.field("label", o.label)
        w.field("target", o.target.rawValue)
        w.field("mode", o.mode.rawValue)
        w.field("url", "http://\(o.host):\(o.port)\(o.pathPrefix)")
        w.field("concurrency", o.mode == .closed ? o.concurrency : 0)
        w.field("ramp_s", o.rampSeconds)
        w.field("rate", o.mode == .open ? o.rate : 0)
        w.field("tokens", o.tokens)
        w.field("token_delay_ms", o.tokenDelayMs)
        w.field("first_delay_ms", o.firstDelayMs)
        w.field("directives", o.directives)
        w.field("elapsed_s", elapsed)
        w.field("loadavg_start", r.loadBefore)
        w.field("loadavg_end", r.loadAfter)
        w.field("requests_started", st.started)
        w.field("completed", st.completed)
        w.field("rps", elapsed > 0 ? Double(st.completed) / elapsed : 0)
        w.field("tokens_received", st.tokens)
        w.field("tokens_per_s", elapsed > 0 ? Double(st.tokens) / elapsed : 0)
        w.field("stamps", st.stamps)
        w.field("connections_opened", st.connectionsOpened)
        histogram(&w, "ttft_us", st.ttft)
        histogram(&w, "ttfb_us", st.ttfb)
        histogram(&w, "gap_us", st.gap)
        histogram(&w, "stamp_delay_us", st.stampDelay)
        histogram(&w, "total_us", st.total)
        histogram(&w, "connect_us", st.connect)
        w.key("errors")
        w.beginObject()
        for (k, v) in st.errors.sorted(by: { $0.key < $1.key }) { w.field(k, v) }
        w.endObject()
        w.field("error_total", st.errorCount)
        w.key("harness")
        w.beginObject()
        w.field("cpu_s", harnessCPU)
        w.field("cpu_util", elapsed > 0 ? harnessCPU / elapsed : 0)
        w.field("rss_bytes", Int(ProcessStats.residentBytes))
        w.endObject()
        w.key("servers")
        w.beginArray()
        for (b, a) in zip(r.serverBefore, r.serverAfter) {
            w.beginObject()
            w.field("pid", Int(b.pid))
            w.field("cpu_s", a.cpuNanos >= b.cpuNanos ? Double(a.cpuNanos - b.cpuNanos) / 1e9 : 0)
            w.field("rss_before", Int(b.rssBytes))
            w.field("rss_after", Int(a.rssBytes))
            w.field("fds_before", b.fds)
            w.field("fds_after", a.fds)
            w.endObject()
        }
        w.endArray()
        w.field("server_cpu_s", serverCPU)
        if st.completed > 0 && !o.serverPIDs.isEmpty {
            w.field("server_cpu_s_per_1000", serverCPU / Double(st.completed) * 1000)
        } else {
            w.key("server_cpu_s_per_1000"); w.null()
        }
        if !r.snapshots.isEmpty {
            w.key("snapshots")
            w.beginArray()
            for s in r.snapshots {
                w.beginObject()
                w.field("label", s.label)
                w.field("at_s", s.atSeconds)
                w.field("open_streams", s.openStreams)
                if let m = s.mockActive { w.field("mock_active_streams", m) }
                w.key("servers")
                w.beginArray()
                for p in s.servers { sample(&w, p) }
                w.endArray()
                w.key("harness")
                sample(&w, s.harness)
                w.endObject()
            }
            w.endArray()
            if let base = r.snapshots.first {
                w.key("per_stream")
                w.beginArray()
                for s in r.snapshots where s.label.hasPrefix("open_") && s.openStreams > 0 {
                    let n = Double(s.openStreams)
                    let rss = zip(base.servers, s.servers).reduce(0.0) { $0 + (Double($1.1.rssBytes) - Double($1.0.rssBytes)) }
                    let fds = zip(base.servers, s.servers).reduce(0) { $0 + ($1.1.fds - $1.0.fds) }
                    w.beginObject()
                    w.field("open_streams", s.openStreams)
                    w.field("server_rss_bytes", Int(s.servers.reduce(0) { $0 + $1.rssBytes }))
                    w.field("server_rss_delta_bytes", Int(rss))
                    w.field("server_rss_per_stream_bytes", rss / n)
                    w.field("server_fds", s.servers.reduce(0) { $0 + $1.fds })
                    w.field("server_fds_per_stream", Double(fds) / n)
                    w.field("harness_rss_bytes", Int(s.harness.rssBytes))
                    w.endObject()
                }
                w.endArray()
            }
        }
        if !r.vanishFacts.isEmpty {
            w.key("vanish")
            w.beginObject()
            for (k, v) in r.vanishFacts.sorted(by: { $0.key < $1.key }) { w.field(k, v) }
            w.endObject()
        }
        w.key("notes")
        w.beginArray()
        for n in r.notes { w.string(n) }
        w.endArray()
        w.endObject()
        var out = w.bytes
        out.append(0x0A)
        return out
    }

    func line(_ name: String, _ h: LatencyHistogram) -> String {
        func ms(_ us: UInt64) -> String { Fmt.pad(Fmt.fixed(Double(us) / 1000, 2), 9) }
        return "  \(Fmt.pad(name, 12)) ms  p50 \(ms(h.percentile(50)))  p90 \(ms(h.percentile(90)))  p99 \(ms(h.percentile(99)))  max \(ms(h.maxValue))  (n=\(h.count))"
    }

    func human() -> [String] {
        let st = r.stats
        var out: [String] = []
        let what = o.mode == .closed ? "closed loop C=\(o.concurrency)" + (o.rampSeconds > 0 ? " (ramp \(Fmt.trim(o.rampSeconds)) s)" : "") : o.mode == .open ? "open loop \(Fmt.trim(o.rate)) req/s (max \(o.maxStreams) streams)" : "\(o.mode.rawValue) \(o.streams) streams"
        out.append("chatrelay-bench \(o.label.isEmpty ? "" : "[\(o.label)] ")\(o.target.rawValue) http://\(o.host):\(o.port)\(o.pathPrefix)  \(what)  \(o.directives)")
        out.append("  elapsed \(Fmt.fixed(elapsed, 2)) s  started \(st.started)  completed \(st.completed)  rps \(Fmt.fixed(elapsed > 0 ? Double(st.completed) / elapsed : 0, 1))  tokens \(st.tokens) (\(Fmt.fixed(elapsed > 0 ? Double(st.tokens) / elapsed : 0, 0))/s)  connections \(st.connectionsOpened)")
        out.append(line("ttft", st.ttft))
        out.append(line("gap", st.gap))
        out.append(line("stamp delay", st.stampDelay))
        out.append(line("total", st.total))
        out.append(line("connect", st.connect))
        let errs = st.errors.sorted(by: { $0.key < $1.key }).map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        out.append("  errors \(st.errorCount)\(errs.isEmpty ? "" : ": " + errs)")
        var cpu = "  cpu: harness \(Fmt.fixed(harnessCPU, 2)) s (\(Fmt.fixed(elapsed > 0 ? 100 * harnessCPU / elapsed : 0, 0))%)"
        if !o.serverPIDs.isEmpty {
            cpu += "  server \(Fmt.fixed(serverCPU, 2)) s (\(Fmt.fixed(elapsed > 0 ? 100 * serverCPU / elapsed : 0, 0))%)"
            if st.completed > 0 { cpu += "  server cpu-s per 1000 answers \(Fmt.fixed(serverCPU / Double(st.completed) * 1000, 3))" }
        }
        out.append(cpu + "  loadavg \(Fmt.fixed(r.loadBefore, 2)) → \(Fmt.fixed(r.loadAfter, 2))")
        for (b, a) in zip(r.serverBefore, r.serverAfter) {
            out.append("  pid \(b.pid): rss \(b.rssBytes / 1024) → \(a.rssBytes / 1024) KiB  fds \(b.fds) → \(a.fds)")
        }
        if let base = r.snapshots.first {
            for s in r.snapshots {
                let rss = s.servers.reduce(0) { $0 + $1.rssBytes }
                let fds = s.servers.reduce(0) { $0 + $1.fds }
                var l = "  [\(s.label)] t=\(Fmt.fixed(s.atSeconds, 2)) s open=\(s.openStreams) server rss \(rss / 1024) KiB fds \(fds)"
                if s.openStreams > 0 && s.label.hasPrefix("open_") {
                    let d = zip(base.servers, s.servers).reduce(0.0) { $0 + (Double($1.1.rssBytes) - Double($1.0.rssBytes)) }
                    let df = zip(base.servers, s.servers).reduce(0) { $0 + ($1.1.fds - $1.0.fds) }
                    l += "  → \(Fmt.fixed(d / Double(s.openStreams) / 1024, 2)) KiB and \(Fmt.fixed(Double(df) / Double(s.openStreams), 2)) fds per stream"
                }
                if let m = s.mockActive { l += "  mock active \(m)" }
                l += "  harness rss \(s.harness.rssBytes / 1024) KiB"
                out.append(l)
            }
        }
        for (k, v) in r.vanishFacts.sorted(by: { $0.key < $1.key }) { out.append("  vanish \(k) = \(Fmt.fixed(v, 1))") }
        for n in r.notes { out.append("  note: \(n)") }
        return out
    }

    /// Writes the JSON file; the error is returned as a value.
    func write(to path: String) -> String? {
        let bytes = json()
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return "cannot open \(path): errno \(errno)" }
        defer { close(fd) }
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + off, $0.count - off) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return "write \(path) failed: errno \(errno)" }
            off += n
        }
        return nil
    }
}
