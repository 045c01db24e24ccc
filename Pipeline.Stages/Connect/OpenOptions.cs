using System.Net;

namespace Shadowsocks.Pipeline.Stages.Connect;

/// <summary>
/// How the connect stage opens a socket: TCP Fast Open (<c>fast_open</c>), Multipath TCP (<c>mptcp</c>), the network
/// interface it leaves by (<c>-i</c>) and its source address (server: <c>-b</c>).
/// </summary>
internal readonly record struct OpenOptions(bool FastOpen = false, bool Multipath = false, string? Interface = null, IPAddress? Source = null);
