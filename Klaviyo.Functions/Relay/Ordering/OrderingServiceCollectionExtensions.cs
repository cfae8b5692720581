using Azure.Data.Tables;
using Klaviyo.Functions.Settings;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Klaviyo.Functions.Relay;

internal static class OrderingServiceCollectionExtensions
{
    /// <summary>The host's storage connection (spec 10: the barrier lives in the Functions storage account).</summary>
    public const string StorageConnection = "AzureWebJobsStorage";

    /// <summary>Azure's barrier: <see cref="TableOrderingBarrier"/> over the <see cref="AzureBarrierTable.TableName"/> table
    /// of the Functions storage account (<c>AzureWebJobsStorage__tableServiceUri</c> or <c>__accountName</c> with the
    /// app's managed identity, <c>__clientId</c> for a user-assigned one; or the <c>AzureWebJobsStorage</c> connection
    /// string), unless <c>Relay__Ordering=off</c>. Local mode registers none: its queue holds.</summary>
    public static IServiceCollection AddOrderingBarrier(this IServiceCollection services, IConfiguration configuration)
    {
        services.TryAddSingleton<IBarrierTable>(_ => new AzureBarrierTable(() => TableClientFrom(configuration)));
        services.TryAddSingleton<IOrderingBarrier>(sp => sp.GetRequiredService<IOptions<RelayOptions>>().Value.OrderingEnabled
            ? ActivatorUtilities.CreateInstance<TableOrderingBarrier>(sp)
            : new NoOrderingBarrier());
        return services;
    }

    private static TableClient TableClientFrom(IConfiguration configuration)
    {
        var section = configuration.GetSection(StorageConnection);
        var tableUri = section["tableServiceUri"] is { Length: > 0 } uri
            ? new Uri(uri)
            : section["accountName"] is { Length: > 0 } account ? new Uri($"https://{account.Trim()}.table.core.windows.net") : null;
        if (tableUri is not null)
        {
            return new TableClient(tableUri, AzureBarrierTable.TableName, AzureCredentials.Create(configuration, section["clientId"]));
        }
        if (configuration[StorageConnection] is { Length: > 0 } connectionString)
        {
            return new TableClient(connectionString, AzureBarrierTable.TableName);
        }
        throw new InvalidOperationException(
            $"Per-profile ordering needs the Functions storage account: set {StorageConnection}__tableServiceUri (or __accountName) or {StorageConnection}, or Relay__Ordering=off.");
    }
}
