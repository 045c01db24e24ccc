namespace Shadowsocks.Pipeline.Stages.Connections;

/// <summary>Span names of the two relay directions, seen from the user: upstream goes from the client toward the destination.</summary>
internal static class Direction
{
    public const string Upstream = "relay.upstream";
    public const string Downstream = "relay.downstream";
}
