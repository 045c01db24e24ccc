namespace Shadowsocks.Pipeline.Core.Multiplexing;

/// <summary>How a receive bridge ended.</summary>
internal enum ReceiveOutcome
{
    /// <summary>The peer sent FIN and everything before it went through the chain.</summary>
    EndOfStream,

    /// <summary>A chain declined a chunk or ended in a fault: the connection is being torn down.</summary>
    Faulted,

    /// <summary>The connection was cancelled (teardown or idle timeout).</summary>
    Cancelled,

    /// <summary>The socket failed (reset, aborted).</summary>
    SocketError,
}
