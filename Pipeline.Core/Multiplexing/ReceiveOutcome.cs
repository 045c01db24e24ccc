namespace Shadowsocks.Pipeline.Core.Multiplexing;

/// <summary>How a receive bridge ended.</summary>
internal enum ReceiveOutcome
{
    /// <summary>The peer sent FIN; the target was completed.</summary>
    EndOfStream,

    /// <summary>The target declined a chunk (it faulted or completed): the connection is being torn down.</summary>
    Declined,

    /// <summary>The connection was cancelled (teardown or idle timeout).</summary>
    Cancelled,

    /// <summary>The socket failed (reset, aborted).</summary>
    SocketError,
}
