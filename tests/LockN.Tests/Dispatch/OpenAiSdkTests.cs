using System.ClientModel;
using System.Text;
using OpenAI;
using OpenAI.Chat;

namespace LockN.Tests.Dispatch;

/// <summary>The official OpenAI .NET SDK, unmodified, pointed at LockN: chat, streamed chat, and a message with an image.</summary>
public class OpenAiSdkTests(DispatchServerFixture server) : IClassFixture<DispatchServerFixture>
{
    private ChatClient Chat(string model = DispatchServerFixture.Model) =>
        new(model, new ApiKeyCredential(server.AdminKey), new OpenAIClientOptions { Endpoint = new Uri(server.BaseAddress, "/v1") });

    [Fact]
    public async Task Sdk_chat_completion_returns_the_backend_answer_and_usage()
    {
        var marker = "sdk-" + Guid.NewGuid().ToString("N");

        ChatCompletion completion = await Chat().CompleteChatAsync([new UserChatMessage(marker)], new ChatCompletionOptions { MaxOutputTokenCount = 4 });

        var generation = await server.StandIn.WaitForGenerationAsync(g => g.Prompt == marker);
        Assert.Equal(generation.Text, completion.Content[0].Text);
        Assert.Equal(ChatFinishReason.Length, completion.FinishReason);
        Assert.Equal(generation.TokensGenerated, completion.Usage.OutputTokenCount);
        Assert.Equal(generation.PromptTokens, completion.Usage.InputTokenCount);
    }

    [Fact]
    public async Task Sdk_streaming_chat_receives_every_token_in_order()
    {
        var marker = "sdk-stream-" + Guid.NewGuid().ToString("N");
        var text = new StringBuilder();
        var updates = 0;

        await foreach (var update in Chat(DispatchServerFixture.Alias).CompleteChatStreamingAsync([new UserChatMessage(marker)], new ChatCompletionOptions { MaxOutputTokenCount = 6 }))
        {
            updates++;
            foreach (var part in update.ContentUpdate)
            {
                text.Append(part.Text);
            }
        }

        var generation = await server.StandIn.WaitForGenerationAsync(g => g.Prompt == marker);
        Assert.Equal(generation.Text, text.ToString());
        Assert.True(updates >= generation.TokensGenerated);
    }

    [Fact]
    public async Task Sdk_message_with_an_image_reaches_the_backend_as_an_image_url_data_url()
    {
        var marker = "sdk-image-" + Guid.NewGuid().ToString("N");
        var png = System.Security.Cryptography.RandomNumberGenerator.GetBytes(50_000);
        var message = new UserChatMessage(ChatMessageContentPart.CreateTextPart(marker), ChatMessageContentPart.CreateImagePart(BinaryData.FromBytes(png), "image/png"));

        ChatCompletion completion = await Chat().CompleteChatAsync([message], new ChatCompletionOptions { MaxOutputTokenCount = 2 });

        var generation = await server.StandIn.WaitForGenerationAsync(g => g.Prompt.Contains(marker, StringComparison.Ordinal));
        var parts = generation.Body!["messages"]![0]!["content"]!.AsArray();
        var image = parts.Single(p => p!["type"]!.GetValue<string>() == "image_url")!;
        Assert.Equal("data:image/png;base64," + Convert.ToBase64String(png), image["image_url"]!["url"]!.GetValue<string>());
        Assert.Equal(generation.Text, completion.Content[0].Text);
    }

    [Fact]
    public async Task Sdk_sees_an_unknown_model_as_a_404_client_error()
    {
        var error = await Assert.ThrowsAsync<ClientResultException>(() => Chat("no-such-model").CompleteChatAsync([new UserChatMessage("hi")]));

        Assert.Equal(404, error.Status);
        Assert.Contains("no-such-model", error.Message, StringComparison.Ordinal);
    }
}
