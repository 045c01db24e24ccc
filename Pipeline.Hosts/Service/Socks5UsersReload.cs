using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Hosts.Cli;
using Shadowsocks.Pipeline.Hosts.Configuration;
using Shadowsocks.Pipeline.Stages.Relay;

namespace Shadowsocks.Pipeline.Hosts.Service;

/// <summary>
/// A local's SOCKS5 users (<c>--socks5-auth FILE</c>), reloaded while it runs (SIGHUP), as a multi-user server's users
/// are (<see cref="UsersReload"/>): the settings are read again as at start, the file with them, and its users put in
/// place of the old. Logins from then on are checked against the new list; the open connections of a user taken off
/// it (or given another password) end. A reload that cannot be applied (a settings error, a bad line, no
/// <c>socks5_auth</c> any more) changes nothing and says why in one line.
/// </summary>
internal sealed class Socks5UsersReload(Socks5Users users, LocalTcpRelay relay)
{
    private readonly Lock _gate = new();

    /// <summary>Reads the settings with <paramref name="read"/> and applies their SOCKS5 users; returns whether it did, and the line to tell.</summary>
    public (bool Applied, string Line) Apply(Func<HostSettings> read)
    {
        lock (_gate)
        {
            Socks5Users? newer;
            try
            {
                newer = read().Relay.Socks5Users;
            }
            catch (Exception e) when (e is UsageException or IOException or UnauthorizedAccessException)
            {
                return (false, $"socks5 users not reloaded: {e.Message}");
            }

            if (newer is null)
            {
                return (false, "socks5 users not reloaded: the settings give no socks5_auth now; a local started with it keeps its users (restart it to serve without a login)");
            }

            var before = users.Names;
            var gone = users.GoneIn(newer);
            users.ReplaceWith(newer);
            var after = newer.Names;
            var ended = relay.EndConnectionsOf(gone);
            var added = after.Count(name => !before.Contains(name));
            var removed = before.Count(name => !after.Contains(name));
            var changed = gone.Count(after.Contains);
            return (true, $"socks5 users reloaded: {after.Count} {(after.Count == 1 ? "user" : "users")} ({added} added, {removed} removed, {changed} with a new password); {ended} of their connections ended");
        }
    }
}
