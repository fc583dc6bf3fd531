import XCTest
@testable import IRMKit

/// The BLAS kernel selection rules (`BLASRuntime.decide`) on fixed flag sets, the cpuinfo parser,
/// the sgemm self-check, and a re-execution with `IRM_BLAS_CORETYPE` through the real binary.
final class BLASRuntimeTests: XCTestCase {
    let sapphireRapids = "avx avx2 fma f16c avx512f avx512bw avx512dq avx512vl avx512_bf16 amx_tile amx_bf16"
    let skylake = "avx avx2 fma f16c avx512f avx512bw avx512dq avx512vl"
    let zen3 = "avx avx2 fma f16c"

    func cpu(_ vendor: String, _ flags: String) -> CPUFeatures {
        CPUFeatures(vendor: vendor, modelName: "test", flags: Set(("pni ssse3 sse4_2 " + flags).split(separator: " ").map(String.init)))
    }

    func testGenericKernelsAreReplacedByWhatTheFlagsSupport() {
        let cases: [(String, String, String, String)] = [
            ("Prescott", "GenuineIntel", sapphireRapids, "COOPERLAKE"),
            ("Prescott", "GenuineIntel", skylake, "SKYLAKEX"),
            ("Core2", "GenuineIntel", zen3, "HASWELL"),
            ("Katmai", "GenuineIntel", zen3, "HASWELL"),
            ("Prescott", "AuthenticAMD", zen3, "ZEN"),
            ("Barcelona", "AuthenticAMD", skylake, "ZEN"),
            ("NEHALEM", "GenuineIntel", skylake, "SKYLAKEX"),
        ]
        for (core, vendor, flags, expected) in cases {
            guard case .select(let kernel, let reason) = BLASRuntime.decide(corename: core, cpu: cpu(vendor, flags), environment: [:]) else {
                XCTFail("\(core) on \(vendor) [\(flags)] was kept"); continue
            }
            XCTAssertEqual(kernel, expected, "\(core) on \(vendor) [\(flags)]")
            XCTAssertTrue(reason.contains(core), reason)
        }
    }

    func testAKnownKernelOrAnOldCPUIsKept() {
        for core in ["Haswell", "SkylakeX", "Cooperlake", "Zen", "SapphireRapids"] {
            XCTAssertEqual(BLASRuntime.decide(corename: core, cpu: cpu("GenuineIntel", sapphireRapids), environment: [:]),
                           .keep("OpenBLAS chose \(core), not a generic kernel"))
        }
        // SSE4 only: nothing better to pick.
        guard case .keep(let why) = BLASRuntime.decide(corename: "Prescott", cpu: cpu("GenuineIntel", "avx"), environment: [:]) else {
            return XCTFail("an AVX-only CPU got another kernel")
        }
        XCTAssertTrue(why.contains("no AVX2"), why)
    }

    func testTheUsersChoiceIsAlwaysRespected() {
        let intel = cpu("GenuineIntel", sapphireRapids)
        guard case .keep(let why) = BLASRuntime.decide(corename: "Prescott", cpu: intel, environment: ["OPENBLAS_CORETYPE": "Prescott"]) else {
            return XCTFail("OPENBLAS_CORETYPE was overridden")
        }
        XCTAssertTrue(why.contains("OPENBLAS_CORETYPE=Prescott"), why)
        XCTAssertEqual(BLASRuntime.decide(corename: "Haswell", cpu: intel, environment: ["IRM_BLAS_CORETYPE": "SKYLAKEX"]),
                       .select("SKYLAKEX", reason: "IRM_BLAS_CORETYPE=SKYLAKEX is set in the environment"))
        // OPENBLAS_CORETYPE wins over IRM_BLAS_CORETYPE.
        guard case .keep = BLASRuntime.decide(corename: "Prescott", cpu: intel,
                                              environment: ["OPENBLAS_CORETYPE": "Haswell", "IRM_BLAS_CORETYPE": "SKYLAKEX"]) else {
            return XCTFail("OPENBLAS_CORETYPE was overridden by IRM_BLAS_CORETYPE")
        }
    }

    func testCPUInfoParsesTheFirstProcessor() {
        let text = """
        processor\t: 0
        vendor_id\t: GenuineIntel
        model name\t: Intel(R) Xeon(R) Platinum 8481C
        flags\t\t: fpu pni ssse3 avx avx2 fma avx512f avx512bw avx512dq avx512vl avx512_bf16 amx_tile

        processor\t: 1
        vendor_id\t: AuthenticAMD
        flags\t\t: fpu
        """
        let parsed = CPUFeatures.parse(cpuinfo: text)
        XCTAssertEqual(parsed.vendor, "GenuineIntel")
        XCTAssertEqual(parsed.modelName, "Intel(R) Xeon(R) Platinum 8481C")
        XCTAssertTrue(parsed.hasAVX512)
        XCTAssertEqual(parsed.relevantFlags, ["pni", "ssse3", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512_bf16", "amx_tile"])
        XCTAssertEqual(CPUFeatures.parse(cpuinfo: ""), CPUFeatures(vendor: "", modelName: "", flags: []))
    }

    func testSelfCheckPassesWithTheKernelInUse() {
        XCTAssertNil(BLASRuntime.selfCheck())
    }

    /// IRM_BLAS_CORETYPE makes irm re-execute itself with OPENBLAS_CORETYPE, which OpenBLAS reads at
    /// load time: the kernel in use changes. An explicit OPENBLAS_CORETYPE is left alone.
    func testReexecutionSetsTheKernel() throws {
        let chosen = try CommandRunner.run(["doctor"], environment: ["IRM_BLAS_CORETYPE": "PRESCOTT", "OPENBLAS_CORETYPE": nil])
        XCTAssertEqual(chosen.status, 0, chosen.stderr)
        XCTAssertTrue(chosen.stdout.contains("blas kernel       Prescott: IRM_BLAS_CORETYPE=PRESCOTT from the environment"), chosen.stdout)
        let user = try CommandRunner.run(["doctor", "--json"], environment: ["OPENBLAS_CORETYPE": "Prescott", "IRM_BLAS_CORETYPE": nil])
        XCTAssertEqual(user.status, 0, user.stderr)
        let json = try JSONValue.parse(Data(user.stdout.utf8), source: "doctor")
        XCTAssertEqual(json["kernel"]?.stringValue, "Prescott")
        XCTAssertEqual(json["selection"]?.stringValue, "OPENBLAS_CORETYPE=Prescott from the environment")
    }
}
