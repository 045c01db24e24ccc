namespace Shadowsocks.Pipeline.Core.Diagnostics;

/// <summary>Span and metric attribute names: OpenTelemetry semantic conventions plus the pipeline's own.</summary>
internal static class TagNames
{
    public const string ServerAddress = "server.address";
    public const string ServerPort = "server.port";
    public const string NetworkPeerAddress = "network.peer.address";
    public const string NetworkPeerPort = "network.peer.port";
    public const string NetworkTransport = "network.transport";
    public const string Stage = "pipeline.stage";
    public const string StageMaxParallelism = "pipeline.stage.max_parallelism";
    public const string StageBoundedCapacity = "pipeline.stage.bounded_capacity";
    public const string CipherStage = "pipeline.cipher_stage";
    public const string ForwardMaxParallelism = "pipeline.forward.max_parallelism";
    public const string ForwardBoundedCapacity = "pipeline.forward.bounded_capacity";
    public const string Direction = "pipeline.direction";
    public const string Bytes = "pipeline.bytes";
    public const string Method = "shadowsocks.method";
    public const string Role = "shadowsocks.role";
    public const string Reason = "pipeline.reason";

    /// <summary>A TCP connection's side: <c>client</c> (the accepted connection) or <c>remote</c> (the outbound one).</summary>
    public const string Side = "pipeline.side";

    /// <summary>On a connection's span: the side (<see cref="Side"/>'s values) that ended it abnormally, passed on as a reset.</summary>
    public const string ResetBy = "pipeline.reset_by";

    /// <summary>A 2022 UDP association's client session ID, in hex.</summary>
    public const string SessionId = "shadowsocks.session_id";

    /// <summary>A multi-user 2022 server's user (SIP023), by the name its config gives.</summary>
    public const string UserName = "user.name";

    /// <summary>On a UDP association's span, when it ends: datagrams it sent on toward destinations (or the server).</summary>
    public const string UdpDatagramsOut = "pipeline.udp.datagrams_out";

    /// <summary>On a UDP association's span, when it ends: replies it passed back to its client.</summary>
    public const string UdpDatagramsBack = "pipeline.udp.datagrams_back";

    /// <summary>The local's route for a connection under an ACL: <c>direct</c> or <c>server</c>.</summary>
    public const string Route = "pipeline.route";

    /// <summary>A local's or tunnel's server, as it changes: <c>open</c> (skipped: its last attempts failed) or <c>closed</c> (back in use).</summary>
    public const string CircuitState = "pipeline.circuit_state";
}
