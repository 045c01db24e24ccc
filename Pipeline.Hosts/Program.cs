namespace Shadowsocks.Pipeline.Hosts;

internal static class Program
{
    public static int Main(string[] args) => 0;
}
