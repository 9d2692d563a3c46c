import ZeroMQ

/// Binding and connecting through ``Endpoint``: the text is parsed and checked first, IPv6 is
/// switched on when the address needs it, and libzmq is given the normalised address.
extension ZMQSocket {
    /// Binds `endpoint` (see ``Endpoint``).
    ///
    /// - Throws: ``EndpointError`` for an endpoint that does not parse, else libzmq's error.
    public func bind(endpoint: String) throws {
        let parsed = try Endpoint(parsing: endpoint, role: .bind)
        if parsed.isIPv6 { try setIPv6(true) }
        try bind(parsed.zmqAddress)
    }

    /// Connects to `endpoint` (see ``Endpoint``).
    ///
    /// - Throws: ``EndpointError`` for an endpoint that does not parse, else libzmq's error.
    public func connect(endpoint: String) throws {
        let parsed = try Endpoint(parsing: endpoint, role: .connect)
        if parsed.isIPv6 { try setIPv6(true) }
        try connect(parsed.zmqAddress)
    }
}
