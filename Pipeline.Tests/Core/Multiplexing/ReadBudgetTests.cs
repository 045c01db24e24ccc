using Shadowsocks.Pipeline.Core.Multiplexing;

namespace Shadowsocks.Pipeline.Tests.Core.Multiplexing;

public sealed class ReadBudgetTests
{
    [Theory]
    [InlineData(0, 128 * 1024)]
    [InlineData(1, 128 * 1024)]
    [InlineData(256, 128 * 1024)]
    [InlineData(257, 64 * 1024)]
    [InlineData(512, 64 * 1024)]
    [InlineData(513, 32 * 1024)]
    [InlineData(1024, 32 * 1024)]
    [InlineData(1025, 16 * 1024)]
    [InlineData(2048, 16 * 1024)]
    [InlineData(100_000, 16 * 1024)]
    public void TheDefaultBudget_GivesEachBusyPumpTheLargestBucketWithinItsShare(int busy, int expected)
    {
        var budget = new ReadBudget(ReadBudget.DefaultBytes);
        for (var i = 0; i < busy; i++)
        {
            budget.Enter();
        }

        Assert.Equal(busy, budget.Busy);
        Assert.Equal(expected, budget.BufferSize);
    }

    [Fact]
    public void LeavingGivesTheShareBack()
    {
        var budget = new ReadBudget(1024 * 1024);
        for (var i = 0; i < 64; i++)
        {
            budget.Enter();
        }

        Assert.Equal(16 * 1024, budget.BufferSize);
        for (var i = 0; i < 56; i++)
        {
            budget.Leave();
        }

        Assert.Equal(8, budget.Busy);
        Assert.Equal(128 * 1024, budget.BufferSize);
    }
}
