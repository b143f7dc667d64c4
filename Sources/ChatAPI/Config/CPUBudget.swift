import Reactor

/// How many CPUs this process may really use: the host's online cores, narrowed by the CPU
/// affinity mask (`Cpus_allowed_list`: a cpuset, `taskset`, Kubernetes' static CPU manager) and by a CFS quota
/// (cgroup v2 `cpu.max`, v1 `cpu.cfs_quota_us`/`cpu.cfs_period_us`; Docker's `--cpus`, Kubernetes'
/// CPU limits). The default `CHAT_WORKERS`.
public enum CPUBudget {
    /// The default worker count: max(1, min(usable CPUs, ceil(quota / period))).
    /// `cpuMax`: the contents of every cgroup v2 `cpu.max` from the process's cgroup up to the
    /// root (the tightest wins); `cfsQuota`/`cfsPeriod`: cgroup v1's files, if present.
    /// Missing or unparsable files mean no limit.
    static func workers(affinityCPUs: Int?, onlineCPUs: Int, cpuMax: [String] = [],
                        cfsQuota: String? = nil, cfsPeriod: String? = nil) -> Int {
        var cpus = max(1, onlineCPUs)
        if let a = affinityCPUs, a > 0 { cpus = min(cpus, a) }
        if let q = quotaCPUs(cpuMax: cpuMax, cfsQuota: cfsQuota, cfsPeriod: cfsPeriod) { cpus = min(cpus, q) }
        return max(1, cpus)
    }

    /// ceil(quota / period) of the tightest quota among the files, or nil when none limits.
    static func quotaCPUs(cpuMax: [String], cfsQuota: String?, cfsPeriod: String?) -> Int? {
        var best: Int?
        func consider(_ quota: Int64, _ period: Int64) {
            guard quota > 0, period > 0 else { return }
            let n = Int((quota + period - 1) / period)
            best = min(best ?? n, n)
        }
        for text in cpuMax {
            // "max 100000" (no limit) or "200000 100000"; the period may be missing (100000).
            let fields = text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" })
            guard let first = fields.first, first != "max", let quota = Int64(first) else { continue }
            let period = fields.count > 1 ? Int64(fields[1]) : 100_000
            if let period { consider(quota, period) }
        }
        if let q = cfsQuota.flatMap({ Int64($0.trimmingWhitespace) }) {
            let p = cfsPeriod.flatMap { Int64($0.trimmingWhitespace) } ?? 100_000
            consider(q, p)  // v1: -1 means no limit
        }
        return best
    }

    /// The cgroup v2 directory of this process (from a `/proc/self/cgroup` text), relative to the
    /// mount, e.g. "/system.slice/chatrelay.service"; nil without a v2 ("0::") line.
    static func cgroupV2Path(procSelfCgroup: String) -> String? {
        for line in procSelfCgroup.split(separator: "\n") where line.hasPrefix("0::") {
            return String(line.dropFirst(3))
        }
        return nil
    }

    /// Reads the files and the affinity mask of this process.
    public static func detect() -> Int {
        let online = ReactorThread.onlineProcessorCount
        var cpuMax: [String] = []
        let root = "/sys/fs/cgroup"
        if let path = readFile("/proc/self/cgroup").flatMap({ cgroupV2Path(procSelfCgroup: $0) }) {
            // From the process's own cgroup up to the root: a limit may sit on any ancestor.
            var parts = path.split(separator: "/").map(String.init)
            while true {
                let dir = parts.isEmpty ? root : root + "/" + parts.joined(separator: "/")
                if let s = readFile(dir + "/cpu.max") { cpuMax.append(s) }
                if parts.isEmpty { break }
                parts.removeLast()
            }
        }
        if cpuMax.isEmpty, let s = readFile(root + "/cpu.max") { cpuMax.append(s) }
        var quota: String?, period: String?
        for dir in ["/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup/cpuacct,cpu"] {
            if let q = readFile(dir + "/cpu.cfs_quota_us") {
                quota = q
                period = readFile(dir + "/cpu.cfs_period_us")
                break
            }
        }
        return workers(affinityCPUs: affinityCPUs(), onlineCPUs: online, cpuMax: cpuMax, cfsQuota: quota, cfsPeriod: period)
    }

    /// CPUs in this process's affinity mask, from `/proc/self/status` (the same mask
    /// sched_getaffinity returns, read without a C shim), or nil when it cannot be read.
    static func affinityCPUs() -> Int? {
        readFile("/proc/self/status").flatMap { affinityCPUs(procSelfStatus: $0) }
    }

    /// The CPUs of a `Cpus_allowed_list:` line ("0-3,8,10-11" → 7), or nil without one.
    static func affinityCPUs(procSelfStatus: String) -> Int? {
        for line in procSelfStatus.split(separator: "\n") where line.hasPrefix("Cpus_allowed_list:") {
            var n = 0
            for part in line.dropFirst("Cpus_allowed_list:".count).split(separator: ",") {
                let bounds = part.split(separator: "-").map { Int(Substring($0).trimmingWhitespace) }
                if bounds.count == 1, bounds[0] != nil { n += 1 }
                else if bounds.count == 2, let a = bounds[0], let b = bounds[1], b >= a { n += b - a + 1 }
                else { return nil }
            }
            return n > 0 ? n : nil
        }
        return nil
    }

    /// Files of `/proc` and `/sys/fs/cgroup`: a few lines each, read with a bound all the same.
    private static func readFile(_ path: String) -> String? {
        FileSystem.readFile(path, maxBytes: 1 << 20)
    }
}

private extension StringProtocol {
    var trimmingWhitespace: Substring {
        var s = Substring(self)
        while let c = s.first, c == " " || c == "\n" || c == "\t" || c == "\r" { s.removeFirst() }
        while let c = s.last, c == " " || c == "\n" || c == "\t" || c == "\r" { s.removeLast() }
        return s
    }
}
