namespace Shadowsocks.Pipeline.Bench;

internal static class Program
{
    public static async Task Main(string[] args)
    {
        if (args.Length > 0 && args[0] == "dns")
        {
            await Dns.DnsRate.RunAsync(args);
            return;
        }

        if (args.Length > 0 && args[0] == "acl")
        {
            Acl.AclMatch.Run(args);
            return;
        }

        if (args.Length > 0 && args[0] == "eih")
        {
            Identity.IdentityHeaderCost.Run(args);
            return;
        }

        if (args.Length > 0 && args[0] == "udp-crypto")
        {
            Udp.UdpPacketRate.Run(args);
            return;
        }

        BenchmarkDotNet.Running.BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
    }
}
