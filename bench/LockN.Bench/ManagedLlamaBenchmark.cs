using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace LockN.Bench;

/// <summary>
/// The real llama-server of ../shared/llama run by LockN: generation speed and time to first token called directly on
/// its port against through LockN (which streams every request upstream and assembles plain answers), in alternating
/// rounds of the same run; and an on-demand cold start split into process start, model load and first token.
/// </summary>
internal static class ManagedLlamaBenchmark
{
    private const int Rounds = 20;
    private const int Tokens = 2000;
    private const int ColdStarts = 5;
    private const string ModelFile = "tiny-random-llama.gguf";

    public static async Task<IEnumerable<string>> RunAsync(BenchOptions options)
    {
        var llamaModels = Path.Combine(options.SharedDirectory, "llama", "models");
        var settings = new Dictionary<string, string?>
        {
            ["Models"] = options.ModelsDirectory + ";" + llamaModels,
            ["Keys:DefaultRequestsPerMinute"] = "1000000",
            ["Dispatch:LlamaServerPath"] = Path.Combine(options.SharedDirectory, "llama", "bin", "llama-server"),
        };
        foreach (var (i, name, start) in new[] { (0, "warm", "always"), (1, "cold", "on_demand") })
        {
            settings[$"Dispatch:ManagedServers:{i}:Name"] = name;
            settings[$"Dispatch:ManagedServers:{i}:Model"] = ModelFile;
            settings[$"Dispatch:ManagedServers:{i}:Models:0"] = name;
            settings[$"Dispatch:ManagedServers:{i}:Start"] = start;
            settings[$"Dispatch:ManagedServers:{i}:ContextSize"] = "4096";
            settings[$"Dispatch:ManagedServers:{i}:Threads"] = "1";
        }

        await using var lockn = await BenchServer.StartAsync(options, slots: 1, settings);
        var warm = await WaitForReadyAsync(lockn.Client, "warm");
        using var direct = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{warm.GetProperty("process").GetProperty("port").GetInt32()}"), Timeout = TimeSpan.FromMinutes(5) };
        var upstreamModel = (await direct.GetFromJsonAsync<JsonElement>("/v1/models")).GetProperty("data")[0].GetProperty("id").GetString()!;

        var results = new List<string>
        {
            "### Dispatch: the real llama-server, directly and through LockN",
            "",
            $"llama-server (../shared/llama, `-t 1`, `-c 4096`, one slot) started by LockN as managed server `warm`. Each round sends the same chat request " +
            $"(`max_tokens: {Tokens}`, `ignore_eos`, temperature 0) directly to its port and through LockN, streamed and plain, in alternating order; {Rounds} rounds. " +
            "Tokens/s is the client's: completion tokens over the time from sending to the last byte. Time to first token is the client's first content chunk (streams only: " +
            "a plain answer has none). Client, LockN and llama-server share the machine's two cores.",
            "",
            "| path | answer | rounds | tokens/s (median) | time to first token p50 ms | llama-server's own tokens/s (median) |",
            "|---|---|---:|---:|---:|---:|",
        };

        var ratios = new List<string>();
        var medians = new Dictionary<(bool Stream, bool ThroughLockN), double>();
        foreach (var stream in new[] { true, false })
        {
            var measured = new Dictionary<bool, List<Sample>> { [false] = [], [true] = [] };
            await SendAsync(direct, upstreamModel, stream); // warm-up
            await SendAsync(lockn.Client, "warm", stream);
            for (var round = 0; round < Rounds; round++)
            {
                // Alternate which path goes first, so neither always meets a warmer cache.
                foreach (var throughLockN in round % 2 == 0 ? new[] { false, true } : [true, false])
                {
                    measured[throughLockN].Add(await SendAsync(throughLockN ? lockn.Client : direct, throughLockN ? "warm" : upstreamModel, stream));
                }
            }

            var kind = stream ? "streamed" : "plain";
            foreach (var throughLockN in new[] { false, true })
            {
                var samples = measured[throughLockN];
                var firstTokens = samples.Where(s => s.FirstTokenMs is not null).Select(s => s.FirstTokenMs!.Value).ToList();
                results.Add($"| {(throughLockN ? "through LockN" : "llama-server directly (baseline)")} | {kind} | {samples.Count} | {Median(samples.Select(s => s.TokensPerSecond)):0} | " +
                    $"{(firstTokens.Count > 0 ? Stats.Percentile(firstTokens, 50).ToString("0.00", CultureInfo.InvariantCulture) : "—")} | {Median(samples.Select(s => s.ServerTokensPerSecond)):0} |");
            }

            medians[(stream, true)] = Median(measured[true].Select(s => s.TokensPerSecond));
            medians[(stream, false)] = Median(measured[false].Select(s => s.TokensPerSecond));

            // Each round's pair ran back to back: the median of the pairs' ratios is not moved by the machine's drift.
            var paired = Median(measured[true].Zip(measured[false], (through, direct) => through.TokensPerSecond / direct.TokensPerSecond));
            ratios.Add($"**{kind}: tokens/s through LockN / direct = {paired:0.000}** (median of the {Rounds} rounds' ratios; of the medians: {medians[(stream, true)] / medians[(stream, false)]:0.000}; target ≥ 0.98)");
        }

        // Through LockN a plain answer is streamed upstream: what that costs llama-server itself, and what is left for LockN.
        ratios.Add($"Of that: llama-server streaming / llama-server plain, both direct = {medians[(true, false)] / medians[(false, false)]:0.000}; " +
            $"plain through LockN (streamed upstream, assembled) / streamed direct = {medians[(false, true)] / medians[(true, false)]:0.000}.");

        results.Add("");
        results.AddRange(ratios.SelectMany(r => new[] { r, "" }));

        results.AddRange(
        [
            "### Dispatch: on-demand cold start",
            "",
            $"Managed server `cold` (`on_demand`) stopped through /admin/backends, then one streamed request (`max_tokens: 8`) through LockN; {ColdStarts} times. " +
            "Process start and model load are LockN's (from /admin/backends `last_start`: the process running, then its /health 200 with slots read from /props); " +
            "first token is the rest of the client's time to its first content chunk.",
            "",
            "| start | process start ms | model load ms | first token after load ms | client's time to first token ms |",
            "|---:|---:|---:|---:|---:|",
        ]);
        for (var i = 1; i <= ColdStarts; i++)
        {
            using (var stop = await lockn.Client.PostAsync("/admin/backends/cold/stop", null))
            {
                stop.EnsureSuccessStatusCode();
            }

            var sample = await SendAsync(lockn.Client, "cold", stream: true, maxTokens: 8);
            var start = (await lockn.Client.GetFromJsonAsync<JsonElement>("/admin/backends/cold")).GetProperty("process").GetProperty("last_start");
            var processMs = start.GetProperty("process_start_ms").GetDouble();
            var loadedMs = start.GetProperty("loaded_ms").GetDouble();
            results.Add(FormattableString.Invariant($"| {i} | {processMs:0.0} | {loadedMs - processMs:0.0} | {sample.FirstTokenMs - loadedMs:0.0} | {sample.FirstTokenMs:0.0} |"));
        }

        return results;
    }

    private sealed record Sample(double TokensPerSecond, double? FirstTokenMs, double ServerTokensPerSecond);

    private static async Task<Sample> SendAsync(HttpClient client, string model, bool stream, int maxTokens = Tokens)
    {
        try
        {
            return await SendOnceAsync(client, model, stream, maxTokens);
        }
        catch (HttpRequestException ex) when (ex.HttpRequestError == HttpRequestError.ResponseEnded)
        {
            // llama-server now and then closes a kept-alive connection as a request goes out on it (LockN sends such a
            // request again itself); the direct path gets the same second chance.
            return await SendOnceAsync(client, model, stream, maxTokens);
        }
    }

    private static async Task<Sample> SendOnceAsync(HttpClient client, string model, bool stream, int maxTokens)
    {
        var body = new JsonObject
        {
            ["model"] = model,
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "Tell me a long story." }),
            ["max_tokens"] = maxTokens,
            ["ignore_eos"] = true,
            ["temperature"] = 0,
            ["seed"] = 1,
            ["stream"] = stream,
        };
        if (stream)
        {
            body["stream_options"] = new JsonObject { ["include_usage"] = true };
        }

        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions") { Content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json") };
        var sent = Stopwatch.GetTimestamp();
        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        response.EnsureSuccessStatusCode();
        double? firstToken = null;
        JsonNode? last;
        if (stream)
        {
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
            last = null;
            while (await reader.ReadLineAsync() is { } line)
            {
                if (!line.StartsWith("data: {", StringComparison.Ordinal))
                {
                    continue;
                }

                var chunk = JsonNode.Parse(line[6..])!;
                if (firstToken is null && chunk["choices"]?.AsArray() is [{ } choice, ..] && choice["delta"]?["content"]?.GetValue<string>() is { Length: > 0 })
                {
                    firstToken = Stopwatch.GetElapsedTime(sent).TotalMilliseconds;
                }

                if (chunk["usage"] is not null)
                {
                    last = chunk;
                }
            }
        }
        else
        {
            last = JsonNode.Parse(await response.Content.ReadAsStringAsync());
        }

        var seconds = Stopwatch.GetElapsedTime(sent).TotalSeconds;
        var completion = last!["usage"]!["completion_tokens"]!.GetValue<int>();
        var serverSpeed = last["timings"]?["predicted_per_second"]?.GetValue<double>() ?? 0;
        return new Sample(completion / seconds, firstToken, serverSpeed);
    }

    private static async Task<JsonElement> WaitForReadyAsync(HttpClient client, string name)
    {
        while (true)
        {
            var backend = await client.GetFromJsonAsync<JsonElement>($"/admin/backends/{name}");
            if (backend.GetProperty("state").GetString() == "ready")
            {
                return backend;
            }

            await Task.Delay(50);
        }
    }

    private static double Median(IEnumerable<double> values) => Stats.Percentile([.. values], 50);
}
