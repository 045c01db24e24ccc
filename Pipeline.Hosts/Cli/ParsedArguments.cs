namespace Shadowsocks.Pipeline.Hosts.Cli;

/// <summary>
/// The flags one verb was given, as <see cref="CommandLine"/> parsed them: each flag's values in order (a flag
/// given twice keeps both: <c>-s A -s B</c> names two servers; for the others the last one wins).
/// </summary>
internal sealed class ParsedArguments
{
    private readonly Dictionary<Flag, List<string>> _values;
    private readonly Dictionary<Flag, int> _positions;

    public ParsedArguments(string verb, Dictionary<Flag, List<string>> values, Dictionary<Flag, int>? positions = null)
    {
        Verb = verb;
        _values = values;
        _positions = positions ?? [];
    }

    /// <summary>The given flags among <paramref name="flags"/>, in the order they were last given on the command line.</summary>
    public IEnumerable<Flag> InOrderGiven(IEnumerable<Flag> flags) =>
        flags.Where(Has).OrderBy(flag => _positions.GetValueOrDefault(flag, -1));

    public string Verb { get; }

    public bool Has(Flag flag) => _values.ContainsKey(flag);

    public string? Value(Flag flag) => _values.TryGetValue(flag, out var list) && list.Count > 0 ? list[^1] : null;

    public IReadOnlyList<string> Values(Flag flag) => _values.TryGetValue(flag, out var list) ? list : [];
}
