import Foundation
import XCTest
@testable import IRMKit

/// AtomicOutput in-process: what an output may replace, the checks before the work, the temporary
/// names and their sweep, the lock, and the whole-directory swap with its plain fallback. The
/// signal handling needs a process of its own: CLI/OutputSafetyTests.
final class AtomicOutputTests: XCTestCase {
    func entries(_ directory: URL) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
    }

    static let manifest = Data("{\"tool\": \"irm\"}\n".utf8)

    func testTemporaryNamesParseBackAndStayShort() throws {
        let url = URL(fileURLWithPath: "/tmp/some-dir/report-v2.csv")
        let temporary = AtomicOutput.temporaryURL(beside: url)
        XCTAssertEqual(temporary.deletingLastPathComponent().path, "/tmp/some-dir")
        XCTAssertTrue(temporary.lastPathComponent.hasPrefix(".irm-tmp-"), temporary.lastPathComponent)
        let parsed = try XCTUnwrap(AtomicOutput.parseTemporary(temporary.lastPathComponent))
        XCTAssertEqual(parsed, AtomicOutput.TemporaryName(host: AtomicOutput.temporaryHost, pid: ProcessIdentity.pid, name: "report-v2.csv"))
        let long = URL(fileURLWithPath: "/tmp/" + String(repeating: "é", count: 120))
        XCTAssertLessThanOrEqual(AtomicOutput.temporaryURL(beside: long).lastPathComponent.utf8.count, 255)
        XCTAssertLessThanOrEqual(OutputLock.lockURL(for: long).lastPathComponent.utf8.count, 255)
        for name in [".irm-tmp-", ".irm-tmp-host-12-0000abcd", ".irm-tmp-host-x-0000abcd-n", ".irm-tmp-host-12-abc-n", ".x.tmp-host-12-ab"] {
            XCTAssertNil(AtomicOutput.parseTemporary(name), name)
        }
    }

    func testAFileOutputReplacesOnlyARegularFile() throws {
        // Claiming only checks; it never writes the target, so /dev/null is safe to try.
        XCTAssertThrowsError(try AtomicOutput.claim(URL(fileURLWithPath: "/dev/null"), as: .file, label: "--out")) {
            XCTAssertEqual("\($0)", "--out /dev/null: is a character device; irm replaces only a regular file (or writes a path that does not exist yet)")
        }
        XCTAssertEqual(InputFile.kind(of: "/dev/null"), .characterDevice)
        XCTAssertFalse(FileManager.default.fileExists(atPath: "/dev/.null.irm-lock"))

        let dir = try Fixtures.temporaryDirectory(for: self)
        let fifo = dir.appendingPathComponent("fifo")
        XCTAssertEqual(mkfifo(fifo.path, 0o600), 0)
        XCTAssertThrowsError(try AtomicOutput.write(Data("x".utf8), to: fifo)) {
            XCTAssertTrue("\($0)".contains("is a FIFO (named pipe); irm replaces only a regular file"), "\($0)")
        }
        XCTAssertEqual(InputFile.kind(of: fifo.path), .fifo)
        XCTAssertThrowsError(try AtomicOutput.write(Data("x".utf8), to: dir)) {
            XCTAssertTrue("\($0)".contains("it is a directory; expected a file path"), "\($0)")
        }
        let dangling = dir.appendingPathComponent("dangling")
        XCTAssertEqual(symlink(dir.appendingPathComponent("absent").path, dangling.path), 0)
        XCTAssertThrowsError(try AtomicOutput.write(Data("x".utf8), to: dangling)) {
            XCTAssertTrue("\($0)".contains("symbolic link to a path that does not exist"), "\($0)")
        }
        XCTAssertEqual(try entries(dir), ["dangling", "fifo"], "nothing written, no lock or temporary left")

        // A link to a regular file: the file it names is replaced, the link stays.
        let real = dir.appendingPathComponent("real.txt")
        try Data("old".utf8).write(to: real)
        let link = dir.appendingPathComponent("link.txt")
        XCTAssertEqual(symlink(real.path, link.path), 0)
        try AtomicOutput.write(Data("new".utf8), to: link)
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: link.path), real.path)
        XCTAssertEqual(try Data(contentsOf: real), Data("new".utf8))
    }

    func testTheOutputLocationIsCheckedBeforeTheWork() throws {
        XCTAssertThrowsError(try AtomicOutput.claim(URL(fileURLWithPath: "/proc/irm-test-output"), as: .file, label: "--out")) {
            XCTAssertTrue("\($0)".hasPrefix("--out /proc/irm-test-output: "), "\($0)")
        }
        XCTAssertThrowsError(try AtomicOutput.claim(URL(fileURLWithPath: "/proc/irm-test-output"), as: .directory, label: "--out")) {
            XCTAssertTrue("\($0)".hasPrefix("--out /proc/irm-test-output: "), "\($0)")
        }
        let dir = try Fixtures.temporaryDirectory(for: self)
        XCTAssertThrowsError(try AtomicOutput.claim(dir.appendingPathComponent("missing/out.jsonl"), as: .file)) {
            XCTAssertEqual("\($0)", "cannot write \(dir.path)/missing/out.jsonl: the directory \(dir.path)/missing does not exist")
        }
        let blocker = dir.appendingPathComponent("file")
        try Data("x".utf8).write(to: blocker)
        XCTAssertThrowsError(try AtomicOutput.claim(blocker.appendingPathComponent("out"), as: .directory))
        XCTAssertEqual(try entries(dir), ["file"])
    }

    func testAFileIsPublishedWholeOrNotAtAll() throws {
        let dir = try Fixtures.temporaryDirectory(for: self)
        let url = dir.appendingPathComponent("scores.jsonl")
        let registered = SignalCleanup.registeredCount
        try AtomicOutput.write(Data("first\n".utf8), to: url)
        XCTAssertEqual(try Data(contentsOf: url), Data("first\n".utf8))
        struct Failure: Error {}
        XCTAssertThrowsError(try AtomicOutput.write(to: url) { temporary in
            try Data("half".utf8).write(to: temporary)
            throw Failure()
        })
        XCTAssertEqual(try Data(contentsOf: url), Data("first\n".utf8), "a failing write leaves the old file")
        XCTAssertEqual(try entries(dir), ["scores.jsonl"], "no temporary or lock file left")
        XCTAssertEqual(SignalCleanup.registeredCount, registered, "every temporary path was unregistered")
    }

    func testADirectoryOutputIsReplacedWhole() throws {
        let parent = try Fixtures.temporaryDirectory(for: self)
        let out = parent.appendingPathComponent("analysis")
        try AtomicOutput.writeDirectory([("a.csv", Data("a".utf8)), ("plots/old.svg", Data("<svg/>".utf8)), ("manifest.json", Self.manifest)], to: out)
        XCTAssertEqual(try Fixtures.files(in: out), ["a.csv": Data("a".utf8), "plots/old.svg": Data("<svg/>".utf8), "manifest.json": Self.manifest])
        try AtomicOutput.writeDirectory([("b.csv", Data("b".utf8)), ("manifest.json", Self.manifest)], to: out, directories: ["plots"])
        XCTAssertEqual(try Fixtures.files(in: out), ["b.csv": Data("b".utf8), "manifest.json": Self.manifest], "nothing of the earlier output remains")
        XCTAssertEqual(try entries(out.appendingPathComponent("plots")), [])
        XCTAssertEqual(try entries(parent), ["analysis"], "no temporary directory or lock file left")
    }

    func testAFailingDirectoryWriteLeavesTheOldOutput() throws {
        let parent = try Fixtures.temporaryDirectory(for: self)
        let out = parent.appendingPathComponent("analysis")
        let old: [(path: String, data: Data)] = [("a.csv", Data("a".utf8)), ("manifest.json", Self.manifest)]
        try AtomicOutput.writeDirectory(old, to: out)
        // "x" is both a folder (for x/y) and a file: the second write fails while building.
        XCTAssertThrowsError(try AtomicOutput.writeDirectory([("x/y", Data()), ("x", Data()), ("manifest.json", Self.manifest)], to: out))
        XCTAssertThrowsError(try AtomicOutput.writeDirectory([("../escape", Data())], to: out)) {
            XCTAssertTrue("\($0)".contains("not a plain relative path"), "\($0)")
        }
        XCTAssertEqual(try Fixtures.files(in: out), ["a.csv": Data("a".utf8), "manifest.json": Self.manifest])
        XCTAssertEqual(try entries(parent), ["analysis"])
        // Missing parents are created, and removed again when the write fails.
        let deep = parent.appendingPathComponent("new/deeper/analysis")
        XCTAssertThrowsError(try AtomicOutput.writeDirectory([("x/y", Data()), ("x", Data())], to: deep))
        XCTAssertEqual(try entries(parent), ["analysis"])
        try AtomicOutput.writeDirectory(old, to: deep)
        XCTAssertEqual(try Fixtures.files(in: deep).count, 2)
    }

    func testADirectoryThatIsNotAnIrmOutputIsNeverReplaced() throws {
        let dir = try Fixtures.temporaryDirectory(for: self)
        try Data("mine".utf8).write(to: dir.appendingPathComponent("notes.txt"))
        XCTAssertThrowsError(try AtomicOutput.writeDirectory([("a.csv", Data())], to: dir)) {
            XCTAssertTrue("\($0)".contains("is a directory with files in it but no irm manifest.json"), "\($0)")
        }
        XCTAssertEqual(try entries(dir), ["notes.txt"])
        try Data("{\"tool\": \"other\"}".utf8).write(to: dir.appendingPathComponent("manifest.json"))
        XCTAssertThrowsError(try AtomicOutput.claim(dir, as: .directory))
        let empty = dir.appendingPathComponent("empty")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: false)
        try AtomicOutput.writeDirectory([("a.csv", Data("a".utf8))], to: empty)
        XCTAssertEqual(try entries(empty), ["a.csv"])
    }

    /// The plain version of the swap, for file systems without RENAME_EXCHANGE, and a swap that
    /// fails outright.
    func testTheSwapFallsBackToTwoRenamesAndFailsCleanly() throws {
        let parent = try Fixtures.temporaryDirectory(for: self)
        let target = parent.appendingPathComponent("out")
        try FileManager.default.createDirectory(at: target, withIntermediateDirectories: false)
        try Data("old".utf8).write(to: target.appendingPathComponent("old.txt"))
        func built() throws -> URL {
            let temporary = AtomicOutput.temporaryURL(beside: target)
            try FileManager.default.createDirectory(at: temporary, withIntermediateDirectories: false)
            try Data("new".utf8).write(to: temporary.appendingPathComponent("new.txt"))
            return temporary
        }
        var calls = 0
        try AtomicOutput.publishDirectory(try built(), at: target, exchange: { _, _ in calls += 1; errno = EINVAL; return -1 })
        XCTAssertEqual(calls, 1)
        XCTAssertEqual(try entries(target), ["new.txt"])
        XCTAssertEqual(try entries(parent), ["out"])

        let temporary = try built()
        XCTAssertThrowsError(try AtomicOutput.publishDirectory(temporary, at: target, exchange: { _, _ in errno = EIO; return -1 })) {
            XCTAssertTrue("\($0)".contains("cannot move the finished output into place at \(target.path)"), "\($0)")
        }
        XCTAssertEqual(try entries(target), ["new.txt"], "the output in place is untouched")

        // The real exchange, where the file system has it (Linux tmpfs, ext4, xfs, btrfs do).
        try Data("newer".utf8).write(to: temporary.appendingPathComponent("new.txt"))
        try AtomicOutput.publishDirectory(temporary, at: target)
        XCTAssertEqual(try Data(contentsOf: target.appendingPathComponent("new.txt")), Data("newer".utf8))
        XCTAssertEqual(try entries(parent), ["out"], "the old directory, swapped out, is removed")
    }

    func testALockHeldElsewhereRefusesNamingItsHolder() throws {
        let dir = try Fixtures.temporaryDirectory(for: self)
        let out = dir.appendingPathComponent("scores.jsonl")
        // Another run's lock: flock conflicts between two open descriptions even in one process.
        let lockPath = OutputLock.lockURL(for: out).path
        XCTAssertEqual(lockPath, dir.appendingPathComponent(".scores.jsonl.irm-lock").path)
        let other = open(lockPath, O_RDWR | O_CREAT, 0o644)
        XCTAssertGreaterThanOrEqual(other, 0)
        XCTAssertEqual(flock(other, LOCK_EX | LOCK_NB), 0)
        let record = Array("pid 4242 on elsewhere\n".utf8)
        XCTAssertEqual(record.withUnsafeBytes { write(other, $0.baseAddress, $0.count) }, record.count)
        XCTAssertThrowsError(try AtomicOutput.write(Data("x".utf8), to: out)) {
            XCTAssertTrue("\($0)".hasPrefix("cannot write \(out.path): another irm run (pid 4242 on elsewhere) is writing this output now; wait for it to finish or choose another output"), "\($0)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.path))
        close(other)
        // Unlocked (the holder was killed): the next run takes the lock over and removes it.
        try AtomicOutput.write(Data("x".utf8), to: out)
        XCTAssertEqual(try entries(dir), ["scores.jsonl"])
    }

    func testClaimsNestWithinAProcess() throws {
        let dir = try Fixtures.temporaryDirectory(for: self)
        let out = dir.appendingPathComponent("analysis")
        let lock = OutputLock.lockURL(for: out).path
        let outer = try AtomicOutput.claim(out, as: .directory, label: "--out")
        XCTAssertTrue(FileManager.default.fileExists(atPath: lock))
        XCTAssertThrowsError(try AtomicOutput.claim(out, as: .file)) {
            XCTAssertTrue("\($0)".contains("this run already writes it as a directory"), "\($0)")
        }
        try AtomicOutput.writeDirectory([("a.csv", Data())], to: out)
        XCTAssertTrue(FileManager.default.fileExists(atPath: lock), "the command's claim still holds the lock")
        outer.release()
        outer.release()
        XCTAssertFalse(FileManager.default.fileExists(atPath: lock))
        XCTAssertEqual(try entries(dir), ["analysis"])
    }

    func testStaleTemporariesOfDeadWritersAreSwept() throws {
        let dir = try Fixtures.temporaryDirectory(for: self)
        let host = AtomicOutput.temporaryHost
        let dead = Int32.max - 7  // above any pid_max
        let names = [
            ".irm-tmp-\(host)-\(dead)-0000abcd-analysis",            // a dead process of this host: removed, with its contents
            ".irm-tmp-\(host)-\(dead)-0000abce-scores.jsonl",        // removed
            ".irm-tmp-\(host)-\(ProcessIdentity.pid)-0000abcf-x",    // this live process: kept
            ".irm-tmp-otherhost-\(dead)-0000abd0-fresh",             // another host, recent: kept
            ".irm-tmp-otherhost-\(dead)-0000abd1-old",               // another host, two days old: removed
            ".irm-tmp-nonsense", ".report.md.tmp-123-456", "analysis", // not ours: kept
        ]
        try FileManager.default.createDirectory(at: dir.appendingPathComponent(names[0]), withIntermediateDirectories: false)
        try Data("partial".utf8).write(to: dir.appendingPathComponent(names[0]).appendingPathComponent("report.md"))
        for name in names.dropFirst() { try Data("x".utf8).write(to: dir.appendingPathComponent(name)) }
        let twoDaysAgo = Date().addingTimeInterval(-2 * 24 * 3600)
        try FileManager.default.setAttributes([.modificationDate: twoDaysAgo], ofItemAtPath: dir.appendingPathComponent(names[4]).path)

        let removed = AtomicOutput.sweepStaleTemporaries(in: dir)
        XCTAssertEqual(removed, [names[0], names[1], names[4]].sorted().map { dir.appendingPathComponent($0).path })
        XCTAssertEqual(try entries(dir), [names[2], names[3], names[5], names[6], names[7]].sorted())
        // A claim sweeps its directory and says what it removed.
        try Data("x".utf8).write(to: dir.appendingPathComponent(names[1]))
        let claim = try AtomicOutput.claim(dir.appendingPathComponent("out.jsonl"), as: .file)
        XCTAssertEqual(claim.removedTemporaries, [dir.appendingPathComponent(names[1]).path])
        claim.release()
    }

    func testInputsAndTheStoreMayNotLieInsideADirectoryOutput() throws {
        let dir = try Fixtures.temporaryDirectory(for: self)
        let out = dir.appendingPathComponent("analysis")
        let claim = try AtomicOutput.claim(out, as: .directory, label: "--out")
        defer { claim.release() }
        XCTAssertNoThrow(try claim.checkNothingInside([("--store", dir.appendingPathComponent(".irm-store").path), ("--data", "-"),
                                                       ("--data", dir.appendingPathComponent("analysis-data.jsonl").path)]))
        XCTAssertThrowsError(try claim.checkNothingInside([("--store", out.appendingPathComponent("store").path)])) {
            XCTAssertTrue("\($0)".hasPrefix("--store \(out.path)/store lies inside the output directory \(out.path)"), "\($0)")
        }
        let link = dir.appendingPathComponent("link")
        XCTAssertEqual(symlink(out.path, link.path), 0)
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: false)
        XCTAssertThrowsError(try claim.checkNothingInside([("--data", link.appendingPathComponent("data.jsonl").path)]), "through a link")
    }
}
