using System.Security.Cryptography;
using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Core.Crypto;
using Shadowsocks.Pipeline.Core.Protocol;
using Shadowsocks.Pipeline.Hosts.Cli;
using Shadowsocks.Pipeline.Hosts.Configuration;
using Shadowsocks.Pipeline.Stages.Relay;

namespace Shadowsocks.Pipeline.Hosts.Service;

/// <summary>
/// A multi-user server's users, reloaded while it runs (SIGHUP): the settings are read again as at start (config file,
/// environment, command line) and their users put in place of the old. New connections and UDP sessions are read
/// against the new list at once; the open connections and sessions of a user taken off the list (or given another
/// key) end. Everything else in the settings takes effect at the next start. A reload that cannot be applied (a
/// settings error, another method or identity key, no users) changes nothing and says why in one line.
/// </summary>
internal sealed class UsersReload(ServerUsers users, CipherInfo cipher, byte[] identityKey)
{
    private readonly Lock _gate = new();
    private readonly List<ServerTcpRelay> _tcp = [];
    private readonly List<ServerUdpRelay> _udp = [];

    public void Serve(ServerTcpRelay relay) => _tcp.Add(relay);

    public void Serve(ServerUdpRelay relay) => _udp.Add(relay);

    /// <summary>Reads the settings with <paramref name="read"/> and applies their users; returns whether it did, and the line to tell.</summary>
    public (bool Applied, string Line) Apply(Func<HostSettings> read)
    {
        lock (_gate)
        {
            RelayOptions relay;
            try
            {
                relay = read().Relay;
            }
            catch (Exception e) when (e is UsageException or IOException or UnauthorizedAccessException)
            {
                return (false, $"users not reloaded: {e.Message}");
            }

            if (relay.Cipher != cipher || !CryptographicOperations.FixedTimeEquals(relay.MasterKey, identityKey))
            {
                return (false, "users not reloaded: the method or the server's password (its identity key) is not the one it started with; restart to change them");
            }

            if (relay.Users.Count == 0)
            {
                return (false, "users not reloaded: the settings give no users now; a multi-user server keeps its list (restart it to serve one key)");
            }

            var before = users.Names.ToHashSet(StringComparer.Ordinal);
            IReadOnlyList<ServerUser> gone;
            try
            {
                gone = users.Replace(relay.Users);
            }
            catch (ArgumentException e)
            {
                return (false, $"users not reloaded: {e.Message}"); // the settings check what the table does: not expected
            }

            var after = users.Names.ToHashSet(StringComparer.Ordinal);
            var goneNames = gone.Select(static u => u.Name).ToHashSet(StringComparer.Ordinal);
            var goneUsers = gone.ToHashSet();
            var ended = _tcp.Sum(tcp => tcp.EndConnectionsOf(goneNames)) + _udp.Sum(udp => udp.EndSessionsOf(goneUsers));
            var added = after.Count(name => !before.Contains(name));
            var removed = before.Count(name => !after.Contains(name));
            var rekeyed = goneNames.Count(after.Contains);
            return (true, $"users reloaded: {after.Count} {(after.Count == 1 ? "user" : "users")} ({added} added, {removed} removed, {rekeyed} with a new key); {ended} of their connections and UDP sessions ended");
        }
    }
}
