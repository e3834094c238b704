using LockN.Http;

namespace LockN.Scheduling;

/// <summary>The one mapping from a refused admission to the error a client sees, for every model and protocol.</summary>
internal static class AdmissionErrors
{
    /// <summary>The 429 or 503 for a refused admission; null when a slot was granted.</summary>
    public static ApiError? Refusal(this Admission admission, string model) => admission.Outcome switch
    {
        AdmissionOutcome.Admitted => null,
        AdmissionOutcome.QueueFull => ApiError.QueueFull(model, (int)Math.Ceiling(admission.RetryAfter.TotalSeconds)),
        AdmissionOutcome.DeadlineExceeded => ApiError.DeadlineExceeded(model, admission.Waited),
        var outcome => throw new ArgumentOutOfRangeException(nameof(admission), outcome, null),
    };
}
