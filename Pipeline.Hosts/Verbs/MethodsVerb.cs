using Shadowsocks.Pipeline.Core.Crypto;

namespace Shadowsocks.Pipeline.Hosts.Verbs;

/// <summary><c>shadowsocks methods</c>: one method per line: name, key size, salt or IV size (bytes).</summary>
internal static class MethodsVerb
{
    public static int Run(TextWriter output)
    {
        foreach (var cipher in CipherCatalog.All)
        {
            output.WriteLine($"{cipher.Name} {cipher.KeySize} {cipher.SaltSize}");
        }

        return 0;
    }
}
