import Foundation
import XCTest
@testable import IRMKit

/// Every input irm opens must be a regular file: a FIFO would block the open (or the read) for
/// ever, a device reads without end. Each reader refuses them, naming the path and what it is.
final class InputFileTests: XCTestCase {
    /// A FIFO in a fresh directory, and a writer that, should the code under test open it and wait,
    /// opens it after a grace period and closes it again: the waiting reader then sees an empty file,
    /// and the test fails (the writer found a reader) instead of hanging the suite. With the checks
    /// in place nothing ever opens the FIFO for reading, so the writer never finds a reader.
    func makeFIFO(_ name: String) throws -> String {
        let path = try Fixtures.temporaryDirectory(for: self).appendingPathComponent(name).path
        XCTAssertEqual(mkfifo(path, 0o600), 0, String(cString: strerror(errno)))
        let unblocker = FIFOUnblocker(path: path)
        unblocker.start()
        addTeardownBlock {
            unblocker.stop()
            XCTAssertFalse(unblocker.releasedAReader, "something opened \(path) for reading and waited on it")
        }
        return path
    }

    func assertRefusesFIFO(_ what: String, _ body: () throws -> Void, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try body(), what, file: file, line: line) { error in
            XCTAssertTrue("\(error)".contains("is a FIFO (named pipe), expected a regular file"), "\(what): \(error)", file: file, line: line)
        }
    }

    func testKinds() throws {
        let dir = try Fixtures.temporaryDirectory(for: self)
        let regular = dir.appendingPathComponent("file.txt")
        try Data("x".utf8).write(to: regular)
        let link = dir.appendingPathComponent("link.txt").path
        XCTAssertEqual(symlink(regular.path, link), 0)
        let dangling = dir.appendingPathComponent("dangling").path
        XCTAssertEqual(symlink(dir.appendingPathComponent("absent").path, dangling), 0)
        let fifo = dir.appendingPathComponent("fifo").path
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)

        XCTAssertEqual(InputFile.kind(of: regular.path), .regular)
        XCTAssertEqual(InputFile.kind(of: link), .regular, "symbolic links are followed")
        XCTAssertEqual(InputFile.kind(of: dangling), .missing)
        XCTAssertEqual(InputFile.kind(of: dir.path), .directory)
        XCTAssertEqual(InputFile.kind(of: fifo), .fifo)
        XCTAssertEqual(InputFile.kind(of: "/dev/null"), .characterDevice)
        XCTAssertNil(InputFile.problem(link, what: "a test input"))
        XCTAssertEqual(InputFile.problem("/dev/null", what: "a test input"),
                       "/dev/null: is a character device, expected a regular file (a test input)")
        XCTAssertEqual(try InputFile.contents(link, what: "a test input"), Data("x".utf8))
    }

    func testEveryReaderRefusesAFIFOWithoutBlocking() throws {
        let fifo = try makeFIFO("input.json")
        assertRefusesFIFO("data") { _ = try DataRecords.read(path: fifo) }
        assertRefusesFIFO("HDF5") { _ = try HDF5File.open(fifo) }
        assertRefusesFIFO("checkpoint") { _ = try Checkpoint.open(path: fifo) }
        assertRefusesFIFO("SHA-256") { _ = try SHA256.hex(ofFile: fifo) }
        assertRefusesFIFO("safetensors") { _ = try SafetensorsFile(path: fifo) }
        assertRefusesFIFO("tokenizer.json") { _ = try TokenizationJSONLines.loadTokenizer(jsonPath: fifo) }
        assertRefusesFIFO("tokenize --file") { _ = try TokenizationJSONLines.records(fromFile: fifo) }
        assertRefusesFIFO("Hugging Face file") { _ = try HuggingFaceImporter.readFile(URL(fileURLWithPath: fifo), what: "the model configuration") }
        let features = try makeFIFO("features.yaml")
        assertRefusesFIFO("features file") { _ = try FeatureSpecification.load(path: features) }
        XCTAssertThrowsError(try MappedFile(path: fifo)) {
            XCTAssertTrue("\($0)".contains("expected a non-empty regular file to map"), "\($0)")
        }
    }

    func testDevicesAndDirectoriesAreRefusedByName() throws {
        XCTAssertThrowsError(try DataRecords.read(path: "/dev/null")) {
            XCTAssertTrue("\($0)".hasPrefix("/dev/null: is a character device, expected a regular file (the data file"), "\($0)")
        }
        XCTAssertThrowsError(try Checkpoint.open(path: "/dev/zero")) {
            XCTAssertTrue("\($0)".contains("/dev/zero: is a character device, expected a regular file"), "\($0)")
        }
        let dir = try Fixtures.temporaryDirectory(for: self).appendingPathComponent("features.yaml")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        XCTAssertThrowsError(try FeatureSpecification.load(path: dir.path)) {
            XCTAssertTrue("\($0)".contains("is a directory, expected a regular file (the features file)"), "\($0)")
        }
    }

    /// The command-line surface: a FIFO as the model gives one error line at once.
    func testAFIFOModelIsRefusedByTheCommand() throws {
        let fifo = try makeFIFO("model.h5")
        let out = try Fixtures.temporaryDirectory(for: self).appendingPathComponent("scores.jsonl").path
        let run = try CommandRunner.run(["score", "--model", fifo, "--data", Fixtures.path("analysis/pairs.jsonl"), "--out", out],
                                        timeout: 120)
        XCTAssertFalse(run.timedOut, "irm waited on the FIFO")
        XCTAssertEqual(run.status, 1, run.stderr)
        XCTAssertTrue(run.stderr.hasPrefix("irm: error: \(fifo): is a FIFO (named pipe), expected a regular file"), run.stderr)
        XCTAssertEqual(run.stderr.split(separator: "\n").count, 1, run.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
    }
}

/// Opens a FIFO for writing now and then, to release a reader that a regression left waiting on it.
final class FIFOUnblocker: @unchecked Sendable {
    private let path: String
    private let lock = NSLock()
    private var stopped = false
    private var released = false

    init(path: String) { self.path = path }

    /// Whether a reader was waiting on the FIFO when the writer opened it.
    var releasedAReader: Bool { lock.withLock { released } }

    func start() {
        let thread = Thread { [self] in
            Thread.sleep(forTimeInterval: 10)
            while !isStopped {
                // O_NONBLOCK: fails with ENXIO when nobody is reading, and never waits itself.
                let descriptor = open(path, O_WRONLY | O_NONBLOCK)
                if descriptor >= 0 {
                    lock.withLock { released = true }
                    close(descriptor)
                }
                Thread.sleep(forTimeInterval: 1)
            }
        }
        thread.start()
    }

    func stop() { lock.withLock { stopped = true } }
    private var isStopped: Bool { lock.withLock { stopped } }
}
