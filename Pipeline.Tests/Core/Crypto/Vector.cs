namespace Shadowsocks.Pipeline.Tests.Core.Crypto;

/// <summary>One line of Vectors/vectors.txt (made by Vectors/make-vectors.sh with openssl, libsodium and OCB).</summary>
public sealed record Vector(string Method, byte[] Key, byte[] Iv, byte[] Plaintext, byte[] Ciphertext)
{
    private static readonly Lazy<IReadOnlyList<Vector>> s_all = new(Load);

    public static IReadOnlyList<Vector> All => s_all.Value;

    public static Vector For(string method) => All.Single(v => v.Method == method);

    public static TheoryData<string> Methods()
    {
        var data = new TheoryData<string>();
        foreach (var vector in All)
        {
            data.Add(vector.Method);
        }

        return data;
    }

    private static IReadOnlyList<Vector> Load()
    {
        var path = Path.Combine(AppContext.BaseDirectory, "Vectors", "vectors.txt");
        return [.. File.ReadLines(path)
            .Where(line => line.Length > 0)
            .Select(line => line.Split(' '))
            .Select(f => new Vector(f[0], Hex(f[1]), Hex(f[2]), Hex(f[3]), Hex(f[4])))];
    }

    private static byte[] Hex(string text) => text == "-" ? [] : Convert.FromHexString(text);
}
