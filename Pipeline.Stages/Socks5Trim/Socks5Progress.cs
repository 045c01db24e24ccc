namespace Shadowsocks.Pipeline.Stages.Socks5Trim;

/// <summary>
/// What the SOCKS5 handshake stage has of a handshake that is not complete yet, kept on the session while it waits for
/// more bytes (<see cref="Connections.WaitForBytesStage"/>): whether the greeting is read (and the login, when there are
/// users), and the bytes after it (or of it) received so far. A copy of exactly that length, not a pooled buffer, so a session that waits holds nothing of
/// the pool's.
/// </summary>
internal sealed class Socks5Progress
{
    /// <summary>Whether the greeting is read (and answered, or its answer owed: <see cref="Connections.TcpSession.Socks5MethodSelectionPending"/>).</summary>
    public bool GreetingRead { get; set; }

    /// <summary>
    /// With SOCKS5 users (<c>--socks5-auth</c>): whether the client has logged in (RFC 1929), so the bytes after the
    /// greeting are the request's. Without users, never set: the request follows the greeting.
    /// </summary>
    public bool LoggedIn { get; set; }

    /// <summary>When the stage first worked on the handshake (its span's start, <see cref="DateTime.UtcNow"/> as spans have it).</summary>
    public DateTime Started { get; init; }

    /// <summary>The bytes received and not yet parsed: of the greeting, of the login once the greeting is read, of the request once both are.</summary>
    public byte[] Received { get; set; } = [];
}
