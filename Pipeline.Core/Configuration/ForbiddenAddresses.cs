using System.Net;

namespace Shadowsocks.Pipeline.Core.Configuration;

/// <summary>
/// Destinations the server refuses (<c>--forbidden-ip</c>, config <c>forbidden_ip</c>), as the Python server has it:
/// a comma-separated list of addresses or CIDR networks. Checked after resolution, so a name that resolves to a
/// forbidden address is refused too. IPv4-mapped IPv6 addresses are checked as IPv4.
/// </summary>
internal sealed class ForbiddenAddresses
{
    /// <summary>The Python server's default: the server's own loopback.</summary>
    public const string DefaultList = "127.0.0.0/8,::1/128";

    private readonly IPNetwork[] _networks;

    private ForbiddenAddresses(IPNetwork[] networks) => _networks = networks;

    /// <summary>Allows everything (an empty list).</summary>
    public static ForbiddenAddresses None { get; } = new([]);

    public static ForbiddenAddresses Default { get; } = Parse(DefaultList);

    public bool IsEmpty => _networks.Length == 0;

    public static bool TryParse(string text, out ForbiddenAddresses forbidden, out string? error)
    {
        var networks = new List<IPNetwork>();
        foreach (var item in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (IPNetwork.TryParse(item, out var network))
            {
                networks.Add(Multiplexing.DualStack.Unmapped(network)); // addresses are looked up unmapped
            }
            else if (IPAddress.TryParse(item, out var address))
            {
                networks.Add(Multiplexing.DualStack.Unmapped(new IPNetwork(address, address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? 32 : 128)));
            }
            else
            {
                forbidden = None;
                error = $"forbidden_ip: '{item}' is not an address or network; expected e.g. {DefaultList} (or '' to allow all)";
                return false;
            }
        }

        forbidden = new ForbiddenAddresses([.. networks]);
        error = null;
        return true;
    }

    public bool Contains(IPAddress address)
    {
        address = Multiplexing.DualStack.Unmapped(address);

        // A connection or datagram to the unspecified address reaches this machine's own loopback (Linux): it is
        // forbidden when loopback is.
        if (address.Equals(IPAddress.Any))
        {
            address = IPAddress.Loopback;
        }
        else if (address.Equals(IPAddress.IPv6Any))
        {
            address = IPAddress.IPv6Loopback;
        }

        foreach (var network in _networks)
        {
            if (network.Contains(address))
            {
                return true;
            }
        }

        return false;
    }

    public override string ToString() => string.Join(',', _networks);

    private static ForbiddenAddresses Parse(string text) =>
        TryParse(text, out var forbidden, out var error) ? forbidden : throw new FormatException(error);
}
