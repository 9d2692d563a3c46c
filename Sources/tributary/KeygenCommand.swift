import ArgumentParser
import FlowCluster
import Foundation
import ZeroMQ

/// `tributary keygen`: write a CURVE key pair, or list the fingerprints of keys.
struct KeygenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keygen",
        abstract: "Write a CURVE key pair for a coordinator or a worker, or list key fingerprints.",
        discussion: """
            Writes NAME.pub (the public key: one line, Z85 key then NAME) and NAME.key (the \
            secret key, mode 0600) into --out. Give the coordinator its NAME.key with --key and \
            its workers' .pub lines in --authorized-keys; give each worker its own NAME.key with \
            --key and the coordinator's .pub with --server-key. See docs/security.md.

            With --list, prints the fingerprint of every key in the given files (.pub, .key or \
            authorized-keys files) or directories (their .pub and .key files); default: --out, \
            else the current directory.
            """)

    @Option(help: "Directory to write the key files into (created if missing).")
    var out: String?

    @Option(help: "The key pair's name: the files are NAME.pub and NAME.key (default: this host's name).")
    var name: String?

    @Flag(help: "List fingerprints instead of writing a key pair.")
    var list = false

    @Argument(help: "With --list: key files, authorized-keys files or directories.")
    var paths: [String] = []

    func validate() throws {
        if !list {
            guard out != nil else { throw ValidationError("--out DIR is required (or --list)") }
            guard paths.isEmpty else { throw ValidationError("file arguments are only for --list") }
        }
    }

    func run() throws {
        guard ZeroMQ.has("curve") else { throw CLIError("this libzmq was built without CURVE support") }
        if list {
            try listKeys()
            return
        }
        let directory = out!
        let name = self.name ?? ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "tributary"
        let pair = try CurveKeyPair.generate()
        try CurveKeyFile.write(pair, directory: directory, name: name)
        print("""
            wrote \(CurveKeyFile.secretPath(directory: directory, name: name)) (secret key, mode 0600: keep it private)
            wrote \(CurveKeyFile.publicPath(directory: directory, name: name)) (public key)
            fingerprint \(pair.publicKey.fingerprint)
            public key  \(pair.publicKey.z85)
            """)
    }

    private func listKeys() throws {
        var files: [String] = []
        for path in paths.isEmpty ? [out ?? "."] : paths {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                throw CLIError("\(path): no such file or directory")
            }
            if isDirectory.boolValue {
                let names = try FileManager.default.contentsOfDirectory(atPath: path).sorted()
                files += names.filter { $0.hasSuffix(".pub") || $0.hasSuffix(".key") }.map { "\(path)/\($0)" }
            } else {
                files.append(path)
            }
        }
        for file in files {
            if file.hasSuffix(".key") {
                let pair = try CurveKeyFile.readPair(path: file)
                print("\(pair.publicKey.fingerprint)  \(pair.publicKey.z85)  \(file) (secret key)")
            } else {
                for entry in try CurveKeyFile.keyLines(path: file) {
                    let label = entry.label.isEmpty ? "" : " \(entry.label)"
                    print("\(entry.key.fingerprint)  \(entry.key.z85)  \(file):\(entry.line)\(label)")
                }
            }
        }
    }
}
