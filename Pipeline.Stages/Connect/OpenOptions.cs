namespace Shadowsocks.Pipeline.Stages.Connect;

/// <summary>How the connect stage opens a socket: TCP Fast Open (<c>fast_open</c>), Multipath TCP (<c>mptcp</c>).</summary>
internal readonly record struct OpenOptions(bool FastOpen, bool Multipath);
