import FlowData
import Foundation
import Testing

/// `FileIdentity` and `OutputPlan`: files compared by device and inode, outputs checked before
/// any work.
struct OutputPlanTests {
    @Test func identityFollowsTheFileNotTheName() throws {
        let dir = TemporaryDirectory()
        let a = dir.write("a.csv", "1,2\n")
        try FileManager.default.linkItem(atPath: a, toPath: dir.file("hard.csv"))
        try FileManager.default.createSymbolicLink(atPath: dir.file("soft.csv"), withDestinationPath: a)
        let b = dir.write("b.csv", "1,2\n")
        let id = try #require(FileIdentity(path: a))
        #expect(FileIdentity(path: dir.file("hard.csv")) == id)
        #expect(FileIdentity(path: dir.file("soft.csv")) == id)
        #expect(FileIdentity(path: dir.path + "/./../" + (dir.path as NSString).lastPathComponent + "/a.csv") == id)
        #expect(FileIdentity(path: b) != id)
        #expect(FileIdentity(path: dir.file("missing")) == nil)
    }

    @Test func anOutputThatIsAnInputIsRefused() throws {
        let dir = TemporaryDirectory()
        let a = dir.write("a.npy", "x")
        try FileManager.default.linkItem(atPath: a, toPath: dir.file("link.npy"))
        #expect(throws: OutputPathError.sameFile(output: "--output", outputPath: dir.file("link.npy"), other: "--input", otherPath: a, otherIsInput: true)) {
            try OutputPlan().reading("--input", a).writing("--output", dir.file("link.npy")).check()
        }
        try OutputPlan().reading("--input", a).writing("--output", dir.file("b.npy")).check()
    }

    @Test func twoOutputsThatAreOneFileAreRefusedEvenBeforeTheyExist() throws {
        let dir = TemporaryDirectory()
        let plain = dir.file("o.csv")
        let dotted = dir.path + "/./o.csv"
        #expect(throws: OutputPathError.sameFile(output: "--latent", outputPath: dotted, other: "--output", otherPath: plain, otherIsInput: false)) {
            try OutputPlan().writing("--output", plain).writing("--latent", dotted).check()
        }
        try OutputPlan().writing("--output", plain).writing("--latent", dir.file("z.csv")).writing("--none", nil).check()
    }

    @Test func outputsThatCannotBeWrittenAreNamed() throws {
        let dir = TemporaryDirectory()
        let file = dir.write("f", "x")
        #expect(throws: OutputPathError.missingDirectory(option: "--out", path: dir.file("no/m.st"), directory: dir.file("no"))) {
            try OutputPlan().writing("--out", dir.file("no/m.st")).check()
        }
        #expect(throws: OutputPathError.missingDirectory(option: "--out", path: file + "/m.st", directory: file)) {
            try OutputPlan().writing("--out", file + "/m.st").check()
        }
        #expect(throws: OutputPathError.isDirectory(option: "--out", path: dir.path)) {
            try OutputPlan().writing("--out", dir.path).check()
        }
        #expect(throws: OutputPathError.notDirectory(option: "--checkpoint-dir", path: file)) {
            try OutputPlan().writing("--checkpoint-dir", file, kind: .directory).check()
        }
        #expect(throws: OutputPathError.empty(option: "--out")) { try OutputPlan().writing("--out", "").check() }
        // A missing directory output is created later with its parents: fine.
        try OutputPlan().writing("--checkpoint-dir", dir.file("a/b/c"), kind: .directory).check()
    }
}
