namespace Shadowsocks.Pipeline.Stages.Connections;

/// <summary>How one side of a TCP connection ended it abnormally (<c>pipeline.reason</c> of <c>pipeline.connections_reset</c>).</summary>
internal static class BrokenBy
{
    /// <summary>A reset (or another socket error) read from it.</summary>
    public const string Reset = "reset";

    /// <summary>A send to it failed (it had reset, or gone away).</summary>
    public const string SendFailed = "send_failed";

    /// <summary>Its Shadowsocks stream failed authentication after the header (corrupted, or not from a key holder).</summary>
    public const string AuthenticationFailed = "authentication_failed";
}
