namespace LockN.Scheduling;

/// <summary>Slots busy of total; <c>Source</c> says where a backend's count came from (configured, props, slots).</summary>
internal sealed record SlotsReport(int Busy, int Total, [property: System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)] string? Source = null);

/// <summary>Requests waiting, the most that may wait, and how long one may wait for a slot.</summary>
internal sealed record QueueReport(int Depth, int Capacity, double TimeoutSeconds);

/// <summary>The one way a scheduler is shown: /health/ready, /admin/backends and the console read it alike.</summary>
internal static class SchedulerReports
{
    public static (SlotsReport Slots, QueueReport Queue) Report(this SlotScheduler scheduler, string? slotsSource = null)
    {
        var snapshot = scheduler.Snapshot();
        return (new SlotsReport(snapshot.Busy, snapshot.Total, slotsSource),
            new QueueReport(snapshot.QueueDepth, snapshot.QueueCapacity, scheduler.QueueDeadline.TotalSeconds));
    }
}
