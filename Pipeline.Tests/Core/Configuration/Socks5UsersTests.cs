using System.Text;
using Shadowsocks.Pipeline.Core.Configuration;

namespace Shadowsocks.Pipeline.Tests.Core.Configuration;

/// <summary>The <c>--socks5-auth</c> file: <c>user:password</c> lines, each mistake named by its line; logins checked exactly.</summary>
public sealed class Socks5UsersTests
{
    [Fact]
    public void TryParse_CommentsBlankLinesCrlfAndColonsInPasswords_AreRead()
    {
        var users = Parse("# users\r\nalice:wonder land\r\n\r\n  # indented comment\nbob:b:o:b\ncarol: spaced \n");

        Assert.Equal(3, users.Count);
        Assert.True(Verify(users, "alice", "wonder land"));
        Assert.True(Verify(users, "bob", "b:o:b"));
        Assert.True(Verify(users, "carol", " spaced ")); // nothing trimmed
        Assert.False(Verify(users, "carol", "spaced"));
    }

    [Theory]
    [InlineData("alice", "wonder lan")]
    [InlineData("alice", "wonder land\r")]
    [InlineData("alice", "")]
    [InlineData("bob", "wonder land")]
    [InlineData("Alice", "wonder land")]
    [InlineData("", "wonder land")]
    public void Verify_AnythingButTheRightPair_IsRefused(string user, string password) =>
        Assert.False(Verify(Parse("alice:wonder land\nbob:builder\n"), user, password));

    [Fact]
    public void Verify_AUtf8Name_MatchesItsBytes()
    {
        var users = Parse("zoë:κωδικός\n");
        Assert.True(Verify(users, "zoë", "κωδικός"));
        Assert.False(users.Verify(Encoding.Latin1.GetBytes("zoë"), Encoding.UTF8.GetBytes("κωδικός"))); // the same letters, other bytes
    }

    [Theory]
    [InlineData("alice:x\nbob\n", "line 2: no ':' between user name and password; write user:password")]
    [InlineData(":x\n", "line 1: the user name before ':' is empty")]
    [InlineData("# c\nalice:\n", "line 2: user 'alice' has an empty password; give one after ':' (1 to 255 bytes)")]
    [InlineData("alice:x\n\nalice:y\n", "line 3: user 'alice' is given on line 1 too; keep one line per user")]
    [InlineData("", "has no users; write one user:password a line")]
    [InlineData("# only a comment\n\n", "has no users")]
    public void TryParse_AMistake_IsNamedWithItsLineAndFix(string text, string expected)
    {
        Assert.False(Socks5Users.TryParse(text, out _, out var error));
        Assert.StartsWith(expected, error, StringComparison.Ordinal);
    }

    [Fact]
    public void TryParse_FieldsBeyond255Bytes_AreRefused()
    {
        Assert.True(Socks5Users.TryParse($"{new string('u', 255)}:{new string('p', 255)}", out _, out _));
        Assert.False(Socks5Users.TryParse($"{new string('u', 256)}:p", out _, out var nameError));
        Assert.StartsWith("line 1: the user name is longer than 255 bytes (RFC 1929's limit)", nameError, StringComparison.Ordinal);
        Assert.False(Socks5Users.TryParse($"u:{new string('é', 128)}", out _, out var passwordError)); // 256 bytes of UTF-8
        Assert.StartsWith("line 1: user 'u''s password is longer than 255 bytes", passwordError, StringComparison.Ordinal);
        Assert.DoesNotContain("é", passwordError, StringComparison.Ordinal); // never the password itself
    }

    [Fact]
    public void ReplaceWith_TheNewUsersAreChecked_AndGoneInNamesTheRemovedAndTheChanged()
    {
        var users = Parse("alice:a\nbob:b\ncarol:c\n");
        var newer = Parse("alice:a\nbob:B\ndave:d\n");

        Assert.Equal(new HashSet<string> { "bob", "carol" }, users.GoneIn(newer));
        users.ReplaceWith(newer);
        Assert.True(Verify(users, "bob", "B"));
        Assert.False(Verify(users, "bob", "b"));
        Assert.False(Verify(users, "carol", "c"));
        Assert.True(Verify(users, "dave", "d"));
        Assert.Equal(new HashSet<string> { "alice", "bob", "dave" }, users.Names);
    }

    private static Socks5Users Parse(string text)
    {
        Assert.True(Socks5Users.TryParse(text, out var users, out var error), error);
        return users;
    }

    private static bool Verify(Socks5Users users, string user, string password) =>
        users.Verify(Encoding.UTF8.GetBytes(user), Encoding.UTF8.GetBytes(password));
}
