namespace Shadowsocks.Pipeline.Core.Configuration;

/// <summary>
/// Levenshtein distance between two names, for "did you mean" in a refusal: a misspelt method
/// (<c>aes-256-gmc</c>) or config key (<c>sever_port</c>).
/// </summary>
internal static class EditDistance
{
    /// <summary>The fewest single-character insertions, deletions or substitutions that turn <paramref name="a"/> into <paramref name="b"/>.</summary>
    public static int Between(string a, string b)
    {
        var previous = new int[b.Length + 1];
        var current = new int[b.Length + 1];
        for (var j = 0; j <= b.Length; j++)
        {
            previous[j] = j;
        }

        for (var i = 1; i <= a.Length; i++)
        {
            current[0] = i;
            for (var j = 1; j <= b.Length; j++)
            {
                var cost = a[i - 1] == b[j - 1] ? 0 : 1;
                current[j] = Math.Min(Math.Min(current[j - 1] + 1, previous[j] + 1), previous[j - 1] + cost);
            }

            (previous, current) = (current, previous);
        }

        return previous[b.Length];
    }
}
