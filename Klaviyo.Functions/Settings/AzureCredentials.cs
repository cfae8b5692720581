using Azure.Core;
using Azure.Identity;
using Microsoft.Extensions.Configuration;

namespace Klaviyo.Functions.Settings;

/// <summary>The credential the worker's own Azure clients use (Service Bus sender, Azure Monitor exporter).</summary>
internal static class AzureCredentials
{
    /// <summary>Set by App Service (Flex Consumption included) on every app; absent on a developer's machine.</summary>
    public const string SiteNameVariable = "WEBSITE_SITE_NAME";

    /// <summary>App setting: the client ID of the app's user-assigned identity, for the worker's telemetry.</summary>
    public const string ClientIdSetting = "AZURE_CLIENT_ID";

    /// <summary>In Azure only the managed identity (user-assigned when <paramref name="clientId"/> is given): no probing
    /// of developer credentials, and a missing role fails with the identity's own error. Elsewhere the
    /// <see cref="DefaultAzureCredential"/> chain, so <c>az login</c> works for local development.</summary>
    public static TokenCredential Create(IConfiguration configuration, string? clientId)
    {
        clientId = string.IsNullOrWhiteSpace(clientId) ? null : clientId.Trim();
        if (IsAzure(configuration))
        {
            return new ManagedIdentityCredential(clientId is null ? ManagedIdentityId.SystemAssigned : ManagedIdentityId.FromUserAssignedClientId(clientId));
        }
        return new DefaultAzureCredential(new DefaultAzureCredentialOptions { ManagedIdentityClientId = clientId });
    }

    public static bool IsAzure(IConfiguration configuration) => !string.IsNullOrWhiteSpace(configuration[SiteNameVariable]);
}
