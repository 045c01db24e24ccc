using System.Security.Cryptography;
using Shadowsocks.Pipeline.Core.Crypto;
using Shadowsocks.Pipeline.Hosts.Cli;

namespace Shadowsocks.Pipeline.Hosts.Verbs;

/// <summary><c>shadowsocks genkey -m METHOD</c>: a random base64 key of the method's key length.</summary>
internal static class GenKeyVerb
{
    public static int Run(ParsedArguments args, TextWriter output)
    {
        var name = args.Value(Flags.GenKeyMethod) ?? throw new UsageException("-m: missing method; e.g. shadowsocks genkey -m aes-256-gcm");
        if (!CipherCatalog.TryGet(name, out var cipher, out var error))
        {
            throw new UsageException(error!);
        }

        if (cipher.KeySize == 0)
        {
            throw new UsageException($"-m: {cipher.Name} takes a password, not a key; use -k PASSWORD");
        }

        output.WriteLine(Convert.ToBase64String(RandomNumberGenerator.GetBytes(cipher.KeySize)));
        return 0;
    }
}
