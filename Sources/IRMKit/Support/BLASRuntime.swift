import CBLAS
import Foundation

/// What this CPU can do, from `/proc/cpuinfo` (its first processor block).
public struct CPUFeatures: Sendable, Equatable {
    public let vendor: String
    public let modelName: String
    public let flags: Set<String>

    public init(vendor: String, modelName: String, flags: Set<String>) {
        self.vendor = vendor
        self.modelName = modelName
        self.flags = flags
    }

    /// The fields of the first processor block of `/proc/cpuinfo` text; empty when absent.
    public static func parse(cpuinfo: String) -> CPUFeatures {
        var vendor = "", model = "", flags = Set<String>()
        for line in cpuinfo.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.trimmingCharacters(in: .whitespaces).isEmpty, !flags.isEmpty || !vendor.isEmpty { break }
            guard let colon = line.firstIndex(of: ":") else { continue }
            let key = line[..<colon].trimmingCharacters(in: .whitespaces)
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            switch key {
            case "vendor_id": vendor = value
            case "model name": model = value
            case "flags": flags = Set(value.split(separator: " ").map(String.init))
            default: break
            }
        }
        return CPUFeatures(vendor: vendor, modelName: model, flags: flags)
    }

    /// This machine's, or empty ones where `/proc/cpuinfo` cannot be read.
    public static func current() -> CPUFeatures {
        parse(cpuinfo: (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? "")
    }

    /// The flags that decide a BLAS kernel, in a fixed order, as far as the CPU has them (Linux
    /// calls SSE3 `pni`).
    public var relevantFlags: [String] {
        ["pni", "ssse3", "sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512dq", "avx512vl",
         "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16"].filter(flags.contains)
    }

    var hasAVX512: Bool { ["avx512f", "avx512bw", "avx512dq", "avx512vl"].allSatisfy(flags.contains) }
    var hasAVX2: Bool { flags.contains("avx2") && flags.contains("fma") }
    var isAMD: Bool { vendor == "AuthenticAMD" || vendor == "HygonGenuine" }
}

/// Which OpenBLAS kernel irm runs with (issue: Debian 12's OpenBLAS 0.3.21 does not recognise
/// some recent CPUs and falls back to its generic SSE3 "Prescott" kernels, at a fifth of the
/// machine's sgemm rate).
///
/// OpenBLAS reads `OPENBLAS_CORETYPE` once, when the library loads, so irm re-executes itself
/// once with it set. The rules (`decide`):
/// 1. `OPENBLAS_CORETYPE` in the environment, from the user: respected, never changed.
/// 2. `IRM_BLAS_CORETYPE` from the user: used as `OPENBLAS_CORETYPE` (one re-execution).
/// 3. Otherwise, when the kernel OpenBLAS chose is a generic fallback (a pre-AVX2 kernel:
///    Prescott, Core2, Katmai, Nehalem, Opteron, Barcelona…) and the CPU's flags support a better
///    one: AVX-512 F/BW/DQ/VL → Cooperlake (with AVX512_BF16) or SkylakeX, on Intel and others;
///    AVX2 + FMA → Zen on AMD and Hygon, Haswell elsewhere.
/// 4. After a re-execution irm runs a small sgemm against a plain loop. If they disagree it
///    re-executes once more without the kernel, and says so on stderr and in `irm doctor`.
/// A re-execution is marked by `IRM_BLAS_SELECTED` in the environment, so it happens at most
/// twice per process, and never in a process that did not start as irm's own command.
public enum BLASRuntime {
    /// What `decide` says to do.
    public enum Decision: Sendable, Equatable {
        /// Keep OpenBLAS's choice, and why.
        case keep(String)
        /// Re-execute with `OPENBLAS_CORETYPE` set to the kernel, and why.
        case select(String, reason: String)
    }

    /// How the kernel in use came to be, for `irm doctor` and manifests.
    public enum Selection: Sendable, Equatable {
        case openBLAS
        case environment(String)
        case selected(kernel: String, replaced: String)
        case fellBack(kernel: String, why: String)

        public var description: String {
            switch self {
            case .openBLAS: "chosen by OpenBLAS"
            case .environment(let setting): "\(setting) from the environment"
            case .selected(let kernel, let replaced): "selected by irm (\(kernel); OpenBLAS had chosen the generic \(replaced))"
            case .fellBack(let kernel, let why): "OpenBLAS's choice: irm's selection of \(kernel) failed the sgemm self-check (\(why))"
            }
        }
    }

    /// Kernels OpenBLAS falls back to on a CPU it does not know, and older ones without AVX2.
    static let genericKernels: Set<String> = [
        "katmai", "coppermine", "northwood", "prescott", "banias", "atom", "core2", "penryn", "dunnington", "nehalem",
        "opteron", "opteron_sse3", "barcelona", "bobcat", "athlon", "unknown",
    ]

    /// Rules 1–3 for a kernel name (`openblas_get_corename`), CPU and environment.
    public static func decide(corename: String, cpu: CPUFeatures, environment: [String: String]) -> Decision {
        if let user = environment["OPENBLAS_CORETYPE"], !user.isEmpty {
            return .keep("OPENBLAS_CORETYPE=\(user) is set in the environment")
        }
        if let user = environment["IRM_BLAS_CORETYPE"], !user.isEmpty {
            return .select(user, reason: "IRM_BLAS_CORETYPE=\(user) is set in the environment")
        }
        let current = corename.lowercased()
        guard genericKernels.contains(current) else { return .keep("OpenBLAS chose \(corename), not a generic kernel") }
        let better: String?
        if cpu.hasAVX512 && !cpu.isAMD {
            better = cpu.flags.contains("avx512_bf16") ? "COOPERLAKE" : "SKYLAKEX"
        } else if cpu.hasAVX2 {
            better = cpu.isAMD ? "ZEN" : "HASWELL"
        } else {
            better = nil
        }
        guard let better else { return .keep("OpenBLAS chose \(corename), and the CPU has no AVX2 + FMA for a better kernel") }
        return .select(better, reason: "OpenBLAS chose the generic \(corename) kernel on a CPU with \(cpu.hasAVX512 && !cpu.isAMD ? "AVX-512" : "AVX2 + FMA")")
    }

    static let marker = "IRM_BLAS_SELECTED"

    /// The kernel OpenBLAS is using.
    public static var corename: String {
        guard let name = openblas_get_corename() else { return "unknown" }
        return String(cString: name).trimmingCharacters(in: .whitespaces)
    }

    /// OpenBLAS's build description (version, target, threading).
    public static var configuration: String {
        guard let config = openblas_get_config() else { return "unknown" }
        return String(cString: config).trimmingCharacters(in: .whitespaces)
    }

    /// The threads irm computes on (`ComputeThreads.count`); OpenBLAS itself runs on one.
    public static var threads: Int { ComputeThreads.count }

    /// Set once by `selectAtStartup`.
    nonisolated(unsafe) public private(set) static var selection: Selection = .openBLAS

    /// Rules 1–4 at the start of the `irm` command: may replace the process (execv) with itself.
    /// Library users who never call it get OpenBLAS's choice.
    public static func selectAtStartup() {
        let environment = ProcessInfo.processInfo.environment
        if let mark = environment[marker] {
            if mark.hasPrefix("failed:") {
                let why = String(mark.dropFirst("failed:".count))
                selection = .fellBack(kernel: environment["IRM_BLAS_TRIED"] ?? "?", why: why)
                FileHandle.standardError.write(Data("irm: warning: the BLAS kernel irm selected failed its self-check (\(why)); running with OpenBLAS's own choice, \(corename)\n".utf8))
                return
            }
            if let problem = selfCheck() {
                setenv(marker, "failed:\(problem)", 1)
                setenv("IRM_BLAS_TRIED", mark, 1)
                unsetenv("OPENBLAS_CORETYPE")
                reexecute()
                selection = .fellBack(kernel: mark, why: problem)
                return
            }
            selection = environment["IRM_BLAS_CORETYPE"] != nil
                ? .environment("IRM_BLAS_CORETYPE=\(mark)") : .selected(kernel: corename, replaced: environment["IRM_BLAS_REPLACED"] ?? "?")
            return
        }
        if let user = environment["OPENBLAS_CORETYPE"], !user.isEmpty {
            selection = .environment("OPENBLAS_CORETYPE=\(user)")
            return
        }
        switch decide(corename: corename, cpu: .current(), environment: environment) {
        case .keep:
            selection = .openBLAS
        case .select(let kernel, _):
            setenv("OPENBLAS_CORETYPE", kernel, 1)
            setenv(marker, kernel, 1)
            setenv("IRM_BLAS_REPLACED", corename, 1)
            reexecute()
            // execv failed: carry on with OpenBLAS's choice.
            unsetenv("OPENBLAS_CORETYPE")
            unsetenv(marker)
            selection = .openBLAS
        }
    }

    /// Replaces the process with a fresh run of the same executable and arguments; returns only
    /// when that fails.
    private static func reexecute() {
        let arguments = CommandLine.arguments
        var pointers: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) }
        pointers.append(nil)
        execv("/proc/self/exe", &pointers)
        for pointer in pointers { free(pointer) }
    }

    /// A 37 × 53 by 53 × 29 sgemm against a plain float64 loop; nil when every entry agrees to
    /// 1e-4 relative to the row's scale, else what disagreed.
    public static func selfCheck() -> String? {
        let m = 37, k = 53, n = 29
        var generator = SeededRandom(seed: 20261202)
        let a = (0..<(m * k)).map { _ in Float(generator.unitInterval() * 2 - 1) }
        let b = (0..<(k * n)).map { _ in Float(generator.unitInterval() * 2 - 1) }
        var c = [Float](repeating: 0, count: m * n)
        ComputeThreads.requireSingleThreadedBLAS()
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k), 1, a, Int32(k), b, Int32(n), 0, &c, Int32(n))
        for i in 0..<m {
            for j in 0..<n {
                var exact = 0.0, scale = 0.0
                for p in 0..<k {
                    let term = Double(a[i * k + p]) * Double(b[p * n + j])
                    exact += term
                    scale += abs(term)
                }
                let found = Double(c[i * n + j])
                guard found.isFinite, abs(found - exact) <= 1e-4 * max(scale, 1e-30) else {
                    return "C[\(i), \(j)] = \(found), expected \(exact)"
                }
            }
        }
        return nil
    }

    /// Lines for `irm doctor`.
    public static func report(cpu: CPUFeatures = .current()) -> [(String, String)] {
        [
            ("cpu", cpu.modelName.isEmpty ? "unknown" : "\(cpu.modelName) (\(cpu.vendor))"),
            ("cpu flags", cpu.relevantFlags.joined(separator: " ")),
            ("blas", configuration),
            ("blas kernel", "\(corename): \(selection.description)"),
            ("blas threads", "\(threads)"),
            ("sgemm self-check", selfCheck().map { "FAILED: \($0)" } ?? "ok"),
        ]
    }

    /// The `blas` object of every manifest.json.
    public static func manifestObject(cpu: CPUFeatures = .current()) -> JSONValue {
        .object([
            "cpu": .string(cpu.modelName), "cpu_vendor": .string(cpu.vendor),
            "cpu_flags": .array(cpu.relevantFlags.map(JSONValue.string)),
            "library": .string(configuration), "kernel": .string(corename), "selection": .string(selection.description),
            "threads": .int(Int64(threads)),
        ])
    }
}
