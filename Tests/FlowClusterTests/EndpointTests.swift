import Testing
import ZeroMQ
@testable import FlowCluster

/// `Endpoint`: what binds and connects accept, what they refuse and how, and the loopback rule
/// for plain TCP (issue 11, item 9).
struct EndpointTests {
    @Test(arguments: [
        ("tcp://127.0.0.1:5570", Endpoint.Role.connect, "tcp://127.0.0.1:5570", false, true),
        ("tcp://127.3.4.5:5570", .bind, "tcp://127.3.4.5:5570", false, true),
        ("tcp://localhost:5570", .bind, "tcp://127.0.0.1:5570", false, true),
        ("tcp://LocalHost:5570", .connect, "tcp://127.0.0.1:5570", false, true),
        ("tcp://[::1]:5570", .bind, "tcp://[::1]:5570", true, true),
        ("tcp://[::ffff:127.0.0.1]:5570", .connect, "tcp://[::ffff:127.0.0.1]:5570", true, true),
        ("tcp://[2001:db8::5]:5570", .connect, "tcp://[2001:db8::5]:5570", true, false),
        ("tcp://*:5570", .bind, "tcp://*:5570", false, false),
        ("tcp://127.0.0.1:*", .bind, "tcp://127.0.0.1:*", false, true),
        ("tcp://10.0.0.5:65535", .connect, "tcp://10.0.0.5:65535", false, false),
        ("tcp://node12.cluster:1", .connect, "tcp://node12.cluster:1", false, false),
        ("tcp://128.0.0.1:5570", .connect, "tcp://128.0.0.1:5570", false, false),
        ("ipc:///tmp/x.ipc", .bind, "ipc:///tmp/x.ipc", false, true),
        ("inproc://job", .connect, "inproc://job", false, true),
    ])
    func accepted(text: String, role: Endpoint.Role, zmq: String, ipv6: Bool, local: Bool) throws {
        let endpoint = try Endpoint(parsing: text, role: role)
        #expect(endpoint.zmqAddress == zmq)
        #expect(endpoint.isIPv6 == ipv6)
        #expect(endpoint.isLocal == local)
    }

    @Test(arguments: [
        ("127.0.0.1:5609", Endpoint.Role.bind, "endpoint \"127.0.0.1:5609\" has no scheme: write tcp://127.0.0.1:5609 (tcp://HOST:PORT or ipc://PATH)"),
        ("/tmp/c.ipc", .connect, "endpoint \"/tmp/c.ipc\" has no scheme: write ipc:///tmp/c.ipc (tcp://HOST:PORT or ipc://PATH)"),
        ("http://127.0.0.1:5609", .connect, "endpoint \"http://127.0.0.1:5609\": unknown scheme \"http://\"; use tcp://HOST:PORT or ipc://PATH"),
        ("tcp://127.0.0.1:99999", .bind, "endpoint \"tcp://127.0.0.1:99999\": port \"99999\" is not a number in 1…65535"),
        ("tcp://127.0.0.1:0", .bind, "endpoint \"tcp://127.0.0.1:0\": port \"0\" is not a number in 1…65535"),
        ("tcp://127.0.0.1:-5", .bind, "endpoint \"tcp://127.0.0.1:-5\": port \"-5\" is not a number in 1…65535"),
        ("tcp://127.0.0.1", .connect, "endpoint \"tcp://127.0.0.1\" has no port: write tcp://HOST:PORT with PORT in 1…65535"),
        ("tcp://127.0.0.1:", .connect, "endpoint \"tcp://127.0.0.1:\" has no port: write tcp://HOST:PORT with PORT in 1…65535"),
        ("tcp://:5570", .bind, "endpoint \"tcp://:5570\" has an empty host: write tcp://127.0.0.1:PORT, tcp://HOST:PORT, or tcp://*:PORT to bind every interface"),
        ("tcp://*:5570", .connect, "endpoint \"tcp://*:5570\": \"*\" as the host only makes sense when binding; connect to the coordinator's address and port"),
        ("tcp://127.0.0.1:*", .connect, "endpoint \"tcp://127.0.0.1:*\": \"*\" as the port only makes sense when binding; connect to the coordinator's address and port"),
        ("tcp://::1:5570", .connect, "endpoint \"tcp://::1:5570\": host \"::1\" looks like an IPv6 address: write it in brackets, e.g. tcp://[::1]:5570"),
        ("tcp://[::g]:5570", .connect, "endpoint \"tcp://[::g]:5570\": host \"::g\" is not an IPv6 address"),
        ("ipc://", .bind, "endpoint \"ipc://\" has an empty path"),
    ])
    func refused(text: String, role: Endpoint.Role, message: String) {
        #expect {
            _ = try Endpoint(parsing: text, role: role)
        } throws: { error in
            "\(error)" == message
        }
    }

    @Test func theLoopbackRuleUnderstandsLocalhostAndBothLoopbackRanges() throws {
        for endpoint in ["tcp://localhost:5570", "tcp://127.9.9.9:5570", "tcp://[::1]:5570", "ipc:///tmp/a"] {
            try ClusterError.checkEndpoint(endpoint, insecure: false)
        }
        for endpoint in ["tcp://10.0.0.1:5570", "tcp://*:5570", "127.0.0.1:5570", "http://127.0.0.1:5570", "tcp://localhost.example.com:1"] {
            #expect(throws: ClusterError.self, "\(endpoint)") { try ClusterError.checkEndpoint(endpoint, insecure: false) }
        }
    }
}

/// `bind(endpoint:)` and `connect(endpoint:)` on real sockets: `localhost` and IPv6 loopback,
/// which libzmq alone refuses ("No such device").
struct EndpointSocketTests {
    @Test(arguments: ["tcp://localhost:*", "tcp://[::1]:*"])
    func aMessageCrossesALocalhostOrIPv6Endpoint(bind: String) throws {
        let context = try ZMQContext()
        defer { context.terminate() }
        let router = try ZMQSocket(context: context, type: .router)
        defer { router.close() }
        try router.setLinger(0)
        try router.bind(endpoint: bind)
        let bound = try #require(try router.lastEndpoint)
        let port = try #require(bound.split(separator: ":").last)
        let connect = bind.hasPrefix("tcp://[") ? "tcp://[::1]:\(port)" : "tcp://localhost:\(port)"
        let dealer = try ZMQSocket(context: context, type: .dealer)
        defer { dealer.close() }
        try dealer.setLinger(0)
        try dealer.connect(endpoint: connect)
        #expect(try dealer.send([Array("hello".utf8)]))
        let frames = try #require(try router.receive(timeoutMilliseconds: 10_000), "nothing arrived over \(connect)")
        #expect(frames.last == Array("hello".utf8))
    }
}
