using System.Text.Json.Nodes;
using Klaviyo.Functions.Tests.BuildOutput;

namespace Klaviyo.Functions.Tests.TestSupport;

/// <summary>
/// Bodies exactly as Segment's Node code writes them (<c>JSON.stringify</c>) and their HMAC-SHA1 signatures computed by
/// node's crypto when the files were written (<c>Ingest/SegmentSignatures/make-fixtures.js</c>), committed as bytes:
/// nothing here is computed by the .NET code under test.
/// </summary>
internal static class SegmentSignedFixtures
{
    private static string Folder => Path.Combine(BuildOutputFiles.RepoRoot(), "Klaviyo.Functions.Tests", "Ingest", "SegmentSignatures");

    public static byte[] Single => File.ReadAllBytes(Path.Combine(Folder, "single.json"));

    public static byte[] Batch => File.ReadAllBytes(Path.Combine(Folder, "batch.json"));

    private static JsonNode Signatures => JsonNode.Parse(File.ReadAllText(Path.Combine(Folder, "signatures.json")))!;

    public static string Secret => (string)Signatures["secret"]!;

    public static string SingleSignature => (string)Signatures["single"]!;

    /// <summary>What Segment sends for a batch: the signature of its first event alone.</summary>
    public static string BatchFirstElementSignature => (string)Signatures["batchFirstElement"]!;

    public static string BatchWholeSignature => (string)Signatures["batchWhole"]!;
}
