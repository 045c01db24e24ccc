using System.Diagnostics;
using Shadowsocks.Pipeline.Core.Configuration;
using Shadowsocks.Pipeline.Core.Diagnostics;

namespace Shadowsocks.Pipeline.Stages.Connections;

/// <summary>Starts a connection-level stage's child span, tagged with the stage's name and tuning.</summary>
internal static class StageActivity
{
    public static Activity? Start(string name, TcpSession session, StageOptions options)
    {
        var activity = PipelineTelemetry.Source.StartActivity(name, ActivityKind.Internal, session.Span?.Context ?? default);
        if (activity is not null)
        {
            activity.SetTag(TagNames.Stage, name);
            activity.SetTag(TagNames.StageMaxParallelism, options.MaxParallelism);
            activity.SetTag(TagNames.StageBoundedCapacity, options.BoundedCapacity);
        }

        return activity;
    }

    public static void Fail(this Activity? activity, string reason) => activity?.SetStatus(ActivityStatusCode.Error, reason);
}
