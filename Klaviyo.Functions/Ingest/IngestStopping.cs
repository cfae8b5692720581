using Microsoft.Extensions.Hosting;

namespace Klaviyo.Functions.Ingest;

/// <summary>
/// Turns the ingest away with 503 and <c>Retry-After</c> once the host begins to stop, and (local mode) keeps the
/// server accepting for <see cref="Drain"/> before it closes its listener, so a sender that arrives during shutdown
/// is told to come back rather than refused a connection. In-flight requests finish as usual.
/// </summary>
internal sealed class IngestStopping(IngestAdmission admission, IHostApplicationLifetime lifetime, TimeProvider time, TimeSpan drain) : IHostedLifecycleService
{
    public TimeSpan Drain { get; } = drain;

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        lifetime.ApplicationStopping.Register(admission.BeginStopping);
        return Task.CompletedTask;
    }

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public async Task StoppingAsync(CancellationToken cancellationToken)
    {
        admission.BeginStopping();
        if (Drain > TimeSpan.Zero)
        {
            try
            {
                await Task.Delay(Drain, time, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
