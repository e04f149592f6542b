import Foundation
import Hummingbird
import NIOCore

/// The OpenAPI 3.1 description of every route the server registers, served at `/openapi.json`, with a page that
/// lists it at `/docs` (made from the same document, no network). A test checks that the document and the router
/// list the same routes, so the document stays true as routes are added.
enum OpenAPIDocument {
    struct Operation {
        let method: String
        let path: String
        let tag: String
        let summary: String
        /// The request body's content type.
        var requestType = "application/json"
        var request: [String: Any]? = nil
        var response: [String: Any] = ["type": "object"]
        /// Content types of a 200 answer besides JSON (streams).
        var streams: [String] = []
        var responseType = "application/json"
        /// The shape of its errors (a schema in components).
        var error = "OpenAIError"
        /// Required query parameters (strings).
        var query: [String] = []
    }

    // MARK: schema builders

    static func obj(_ props: [String: Any], required: [String] = [], more: Bool = true) -> [String: Any] {
        ["type": "object", "properties": props, "required": required, "additionalProperties": more]
    }
    static func arr(_ items: Any) -> [String: Any] { ["type": "array", "items": items] }
    static var str: [String: Any] { ["type": "string"] }
    static var int: [String: Any] { ["type": "integer"] }
    static var num: [String: Any] { ["type": "number"] }
    static var bool: [String: Any] { ["type": "boolean"] }
    static var any: [String: Any] { [:] }
    static func ref(_ name: String) -> [String: Any] { ["$ref": "#/components/schemas/\(name)"] }
    static func oneOf(_ s: [Any]) -> [String: Any] { ["oneOf": s] }

    static var components: [String: Any] { [
        "OpenAIError": obj(["error": obj(["message": str, "type": str, "param": ["type": ["string", "null"]], "code": ["type": ["string", "null"]]],
                                         required: ["message", "type"])], required: ["error"]),
        "OllamaError": obj(["error": str], required: ["error"]),
        "AnthropicError": obj(["type": ["const": "error"], "error": obj(["type": str, "message": str], required: ["type", "message"])],
                              required: ["type", "error"]),
        "ChatMessage": obj(["role": ["enum": ["system", "developer", "user", "assistant", "tool"]],
                            "content": oneOf([str, arr(obj(["type": str, "text": str])), ["type": "null"]]),
                            "tool_calls": arr(ref("ToolCall")), "tool_call_id": str], required: ["role"]),
        "ToolCall": obj(["id": str, "type": ["const": "function"], "function": obj(["name": str, "arguments": str], required: ["name"])],
                        required: ["function"]),
        "Tool": obj(["type": ["const": "function"], "function": obj(["name": str, "description": str, "parameters": any], required: ["name"])],
                    required: ["type", "function"]),
        "ResponseFormat": obj(["type": ["enum": ["text", "json_object", "json_schema"]],
                               "json_schema": obj(["name": str, "schema": any, "strict": bool], required: ["schema"])], required: ["type"]),
        "Usage": obj(["prompt_tokens": int, "completion_tokens": int, "total_tokens": int,
                      "prompt_tokens_details": obj(["cached_tokens": int])]),
        "ChatCompletionRequest": obj([
            "model": str, "messages": arr(ref("ChatMessage")), "temperature": num, "top_p": num, "top_k": int, "min_p": num,
            "repeat_penalty": num, "max_tokens": int, "max_completion_tokens": int, "stop": oneOf([str, arr(str)]), "seed": int,
            "presence_penalty": num, "frequency_penalty": num, "n": ["const": 1], "logprobs": bool, "top_logprobs": int,
            "stream": bool, "stream_options": obj(["include_usage": bool]), "tools": arr(ref("Tool")),
            "tool_choice": oneOf([["enum": ["auto", "none", "required"]], obj(["type": str, "function": obj(["name": str])])]),
            "parallel_tool_calls": bool, "response_format": ref("ResponseFormat"), "grammar": str, "keep_alive": oneOf([str, num]),
            "ignore_eos": bool, "metadata": obj([:]), "user": str, "lora": ref("LoRA"),
        ], required: ["model", "messages"]),
        "LoRA": arr(obj(["id": int, "scale": num], required: ["id", "scale"])),
        "ChatCompletion": obj([
            "id": str, "object": ["const": "chat.completion"], "created": int, "model": str,
            "choices": arr(obj(["index": int, "finish_reason": str, "logprobs": any,
                                "message": obj(["role": str, "content": ["type": ["string", "null"]], "tool_calls": arr(ref("ToolCall")),
                                                "reasoning_content": str])])),
            "usage": ref("Usage"),
        ], required: ["id", "object", "choices"]),
        "OllamaChatRequest": obj([
            "model": str, "messages": arr(obj(["role": str, "content": str, "tool_calls": arr(any), "tool_name": str, "images": arr(str)])),
            "tools": arr(ref("Tool")), "format": oneOf([["const": "json"], ["type": "object"]]), "options": obj([:]), "stream": bool,
            "keep_alive": oneOf([str, num]), "think": bool,
        ], required: ["model"]),
        "OllamaGenerateRequest": obj([
            "model": str, "prompt": str, "system": str, "template": str, "raw": bool, "suffix": str, "images": arr(str),
            "format": oneOf([["const": "json"], ["type": "object"]]), "options": obj([:]), "stream": bool, "keep_alive": oneOf([str, num]),
            "think": bool,
        ], required: ["model"]),
        "OllamaAnswer": obj(["model": str, "created_at": str, "message": obj(["role": str, "content": str, "thinking": str, "tool_calls": arr(any)]),
                             "response": str, "done": bool, "done_reason": str, "total_duration": int, "load_duration": int,
                             "prompt_eval_count": int, "prompt_eval_duration": int, "eval_count": int, "eval_duration": int], required: ["model", "done"]),
        "MessagesRequest": obj([
            "model": str, "max_tokens": int, "messages": arr(obj(["role": ["enum": ["user", "assistant"]], "content": oneOf([str, arr(["type": "object"])])],
                                                              required: ["role", "content"])),
            "system": oneOf([str, arr(obj(["type": ["const": "text"], "text": str]))]), "stop_sequences": arr(str), "temperature": num,
            "top_p": num, "top_k": int, "stream": bool,
            "tools": arr(obj(["name": str, "description": str, "input_schema": ["type": "object"]], required: ["name", "input_schema"])),
            "tool_choice": obj(["type": ["enum": ["auto", "any", "tool", "none"]], "name": str, "disable_parallel_tool_use": bool]),
            "metadata": obj([:]), "thinking": obj([:]),
        ], required: ["model", "messages", "max_tokens"]),
        "Message": obj(["id": str, "type": ["const": "message"], "role": ["const": "assistant"], "model": str,
                        "content": arr(obj(["type": ["enum": ["text", "thinking", "tool_use"]], "text": str, "thinking": str,
                                            "id": str, "name": str, "input": ["type": "object"]])),
                        "stop_reason": ["enum": ["end_turn", "max_tokens", "stop_sequence", "tool_use", "refusal"]], "stop_sequence": any,
                        "usage": obj(["input_tokens": int, "output_tokens": int, "cache_read_input_tokens": int])],
                       required: ["id", "type", "role", "content", "stop_reason", "usage"]),
        "ResponsesRequest": obj([
            "model": str, "input": oneOf([str, arr(ref("ResponseItem"))]), "instructions": str, "previous_response_id": str,
            "conversation": oneOf([str, obj(["id": str], required: ["id"])]), "truncation": ["enum": ["auto", "disabled"]],
            "store": bool, "stream": bool, "max_output_tokens": int, "temperature": num, "top_p": num,
            "tools": arr(obj(["type": ["const": "function"], "name": str, "description": str, "parameters": ["type": "object"], "strict": bool],
                             required: ["type", "name"])),
            "tool_choice": oneOf([["enum": ["auto", "none", "required"]], obj(["type": ["const": "function"], "name": str], required: ["type", "name"])]),
            "parallel_tool_calls": bool, "metadata": obj([:]), "user": str,
            "text": obj(["format": obj(["type": ["enum": ["text", "json_object", "json_schema"]], "name": str, "schema": ["type": "object"],
                                        "strict": bool], required: ["type"])]),
        ], required: ["model"]),
        "ResponseItem": obj([
            "type": ["enum": ["message", "function_call", "function_call_output", "reasoning"]], "id": str,
            "role": ["enum": ["user", "assistant", "system", "developer"]],
            "content": oneOf([str, arr(obj(["type": ["enum": ["input_text", "output_text", "text", "refusal", "reasoning_text"]], "text": str]))]),
            "call_id": str, "name": str, "arguments": str, "output": oneOf([str, arr(obj(["type": str, "text": str]))]), "status": str,
            "summary": arr(obj(["type": str, "text": str])),
        ]),
        "Response": obj([
            "id": str, "object": ["const": "response"], "created_at": int,
            "status": ["enum": ["completed", "incomplete", "failed", "in_progress"]], "error": any,
            "incomplete_details": oneOf([["type": "null"], obj(["reason": str])]), "model": str, "output": arr(ref("ResponseItem")),
            "store": bool, "previous_response_id": ["type": ["string", "null"]], "instructions": ["type": ["string", "null"]],
            "usage": oneOf([["type": "null"], obj(["input_tokens": int, "output_tokens": int, "total_tokens": int,
                                                   "input_tokens_details": obj(["cached_tokens": int]),
                                                   "output_tokens_details": obj(["reasoning_tokens": int])])]),
        ], required: ["id", "object", "status", "output"]),
        "Conversation": obj(["id": str, "object": ["const": "conversation"], "created_at": int, "metadata": obj([:])],
                            required: ["id", "object", "created_at", "metadata"]),
        "ConversationItems": obj(["object": ["const": "list"], "data": arr(ref("ResponseItem")), "first_id": any, "last_id": any,
                                  "has_more": bool]),
        "File": obj(["id": str, "object": ["const": "file"], "bytes": int, "created_at": int, "filename": str, "purpose": str,
                      "status": str], required: ["id", "object", "bytes", "created_at", "filename", "purpose"]),
        "Batch": obj(["id": str, "object": ["const": "batch"], "endpoint": str, "errors": any, "input_file_id": str,
                      "completion_window": str,
                      "status": ["enum": ["validating", "failed", "in_progress", "finalizing", "completed", "expired", "cancelling", "cancelled"]],
                      "output_file_id": any, "error_file_id": any, "created_at": int, "in_progress_at": any, "expires_at": int,
                      "finalizing_at": any, "completed_at": any, "failed_at": any, "expired_at": any, "cancelling_at": any,
                      "cancelled_at": any, "request_counts": obj(["total": int, "completed": int, "failed": int]), "metadata": obj([:])],
                     required: ["id", "object", "endpoint", "input_file_id", "completion_window", "status", "created_at"]),
        "ModelName": obj(["model": str, "name": str, "keep_alive": oneOf([str, num])]),
    ] }

    static var operations: [Operation] {
        let native = "Native API", openai = "OpenAI", responses = "OpenAI Responses", conversations = "OpenAI Conversations", batches = "OpenAI Files and Batches", ollama = "Ollama", anthropic = "Anthropic Messages", admin = "Administration"
        let nd = ["application/x-ndjson"], sse = ["text/event-stream"]
        return [
            Operation(method: "get", path: "/", tag: native, summary: "A line saying what answers here", responseType: "text/plain"),
            Operation(method: "head", path: "/", tag: ollama, summary: "Whether the server is up (Ollama clients ask)", responseType: "text/plain",
                      error: "OllamaError"),
            Operation(method: "get", path: "/openapi.json", tag: native, summary: "This document"),
            Operation(method: "get", path: "/docs", tag: native, summary: "This document as a page", responseType: "text/html"),
            Operation(method: "get", path: "/metrics", tag: native, summary: "Prometheus metrics (text exposition 0.0.4)", responseType: "text/plain"),
            Operation(method: "get", path: "/v1/models", tag: openai, summary: "The models served",
                      response: obj(["object": str, "data": arr(obj(["id": str, "object": str, "created": int, "owned_by": str]))])),
            Operation(method: "get", path: "/v1/models/{id}", tag: openai, summary: "One model",
                      response: obj(["id": str, "object": str, "created": int, "owned_by": str])),
            Operation(method: "post", path: "/v1/chat/completions", tag: openai, summary: "A chat completion (tools, tool_choice, response_format, grammar)",
                      request: ref("ChatCompletionRequest"), response: ref("ChatCompletion"), streams: sse),
            Operation(method: "post", path: "/v1/completions", tag: openai, summary: "A completion of a raw prompt",
                      request: obj(["model": str, "prompt": oneOf([str, arr(str)]), "max_tokens": int, "temperature": num, "stream": bool,
                                    "echo": bool, "logprobs": int, "suffix": str, "lora": ref("LoRA")], required: ["model", "prompt"]),
                      response: obj(["id": str, "object": str, "choices": arr(obj(["text": str, "index": int, "finish_reason": str])),
                                     "usage": ref("Usage")]), streams: sse),
            Operation(method: "post", path: "/v1/embeddings", tag: openai, summary: "Embeddings (float or base64; token-id input)",
                      request: obj(["model": str, "input": oneOf([str, arr(str), arr(int), arr(arr(int))]),
                                    "encoding_format": str, "dimensions": int, "user": str], required: ["model", "input"]),
                      response: obj(["object": str, "model": str, "data": arr(obj(["object": str, "index": int, "embedding": oneOf([arr(num), str])])),
                                     "usage": obj(["prompt_tokens": int, "total_tokens": int])])),
            Operation(method: "post", path: "/v1/responses", tag: responses,
                      summary: "A response (stored unless store is false; continue one with previous_response_id)",
                      request: ref("ResponsesRequest"), response: ref("Response"), streams: sse),
            Operation(method: "get", path: "/v1/responses/{id}", tag: responses, summary: "A stored response", response: ref("Response")),
            Operation(method: "delete", path: "/v1/responses/{id}", tag: responses, summary: "Delete a stored response",
                      response: obj(["id": str, "object": ["const": "response.deleted"], "deleted": bool])),
            Operation(method: "get", path: "/v1/responses/{id}/input_items", tag: responses,
                      summary: "The input items a stored response saw (limit, order, after)",
                      response: obj(["object": ["const": "list"], "data": arr(ref("ResponseItem")), "first_id": any, "last_id": any,
                                     "has_more": bool])),
            Operation(method: "post", path: "/v1/conversations", tag: conversations, summary: "A conversation (up to 20 first items, metadata)",
                      request: obj(["items": arr(ref("ResponseItem")), "metadata": obj([:])]), response: ref("Conversation")),
            Operation(method: "get", path: "/v1/conversations/{id}", tag: conversations, summary: "A conversation", response: ref("Conversation")),
            Operation(method: "post", path: "/v1/conversations/{id}", tag: conversations, summary: "Replace a conversation's metadata",
                      request: obj(["metadata": obj([:])], required: ["metadata"]), response: ref("Conversation")),
            Operation(method: "delete", path: "/v1/conversations/{id}", tag: conversations, summary: "Delete a conversation and its items",
                      response: obj(["id": str, "object": ["const": "conversation.deleted"], "deleted": bool])),
            Operation(method: "post", path: "/v1/conversations/{id}/items", tag: conversations, summary: "Add up to 20 items",
                      request: obj(["items": arr(ref("ResponseItem"))], required: ["items"]), response: ref("ConversationItems")),
            Operation(method: "get", path: "/v1/conversations/{id}/items", tag: conversations, summary: "A conversation's items (limit, order, after)",
                      response: ref("ConversationItems")),
            Operation(method: "get", path: "/v1/conversations/{id}/items/{item}", tag: conversations, summary: "One item",
                      response: ref("ResponseItem")),
            Operation(method: "delete", path: "/v1/conversations/{id}/items/{item}", tag: conversations, summary: "Delete an item",
                      response: ref("Conversation")),
            Operation(method: "post", path: "/v1/files", tag: batches, summary: "Upload a batch input file (multipart: file, purpose=batch)",
                      requestType: "multipart/form-data", request: obj(["file": ["type": "string", "format": "binary"], "purpose": ["const": "batch"]],
                                                                        required: ["file", "purpose"]), response: ref("File")),
            Operation(method: "get", path: "/v1/files", tag: batches, summary: "Files (purpose, limit, order, after)",
                      response: obj(["object": ["const": "list"], "data": arr(ref("File")), "has_more": bool])),
            Operation(method: "get", path: "/v1/files/{id}", tag: batches, summary: "A file", response: ref("File")),
            Operation(method: "delete", path: "/v1/files/{id}", tag: batches, summary: "Delete a file",
                      response: obj(["id": str, "object": ["const": "file"], "deleted": bool])),
            Operation(method: "get", path: "/v1/files/{id}/content", tag: batches, summary: "A file's content",
                      responseType: "application/octet-stream"),
            Operation(method: "post", path: "/v1/batches", tag: batches, summary: "A batch of requests run in spare capacity",
                      request: obj(["input_file_id": str, "endpoint": ["enum": ["/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/responses"]],
                                    "completion_window": str, "metadata": obj([:]), "webhook_url": str],
                                   required: ["input_file_id", "endpoint", "completion_window"]),
                      response: ref("Batch")),
            Operation(method: "get", path: "/v1/batches", tag: batches, summary: "Batches, newest first (limit, after)",
                      response: obj(["object": ["const": "list"], "data": arr(ref("Batch")), "has_more": bool])),
            Operation(method: "get", path: "/v1/batches/{id}", tag: batches, summary: "A batch", response: ref("Batch")),
            Operation(method: "post", path: "/v1/batches/{id}/cancel", tag: batches, summary: "Cancel a batch", response: ref("Batch")),
            Operation(method: "post", path: "/v1/messages", tag: anthropic, summary: "A message (Anthropic's Messages API)",
                      request: ref("MessagesRequest"), response: ref("Message"), streams: sse, error: "AnthropicError"),
            Operation(method: "post", path: "/v1/messages/count_tokens", tag: anthropic, summary: "The prompt tokens of a request (local models)",
                      request: ref("MessagesRequest"), response: obj(["input_tokens": int], required: ["input_tokens"]), error: "AnthropicError"),
            Operation(method: "post", path: "/api/chat", tag: ollama, summary: "A chat answer (Ollama's API)", request: ref("OllamaChatRequest"),
                      response: ref("OllamaAnswer"), streams: nd, error: "OllamaError"),
            Operation(method: "post", path: "/api/generate", tag: ollama, summary: "A completion (Ollama's API)", request: ref("OllamaGenerateRequest"),
                      response: ref("OllamaAnswer"), streams: nd, error: "OllamaError"),
            Operation(method: "get", path: "/api/tags", tag: ollama, summary: "The models served",
                      response: obj(["models": arr(obj(["name": str, "model": str, "modified_at": str, "size": int, "digest": str, "details": obj([:])]))]),
                      error: "OllamaError"),
            Operation(method: "post", path: "/api/show", tag: ollama, summary: "What a model's file says", request: ref("ModelName"),
                      response: obj(["modelfile": str, "parameters": str, "template": str, "details": obj([:]), "model_info": obj([:]),
                                     "capabilities": arr(str)]), error: "OllamaError"),
            Operation(method: "get", path: "/api/ps", tag: ollama, summary: "The models loaded",
                      response: obj(["models": arr(obj(["name": str, "model": str, "size": int, "expires_at": str]))]), error: "OllamaError"),
            Operation(method: "post", path: "/api/pull", tag: ollama, summary: "Fetch a model, with progress (admin key)",
                      request: obj(["model": str, "name": str, "stream": bool]),
                      response: obj(["status": str, "digest": str, "total": int, "completed": int]), streams: nd, error: "OllamaError"),
            Operation(method: "delete", path: "/api/delete", tag: ollama, summary: "Remove a model's file (admin key)", request: ref("ModelName"),
                      error: "OllamaError"),
            Operation(method: "post", path: "/api/copy", tag: ollama, summary: "Serve a model under another name too (admin key)",
                      request: obj(["source": str, "destination": str], required: ["source", "destination"]), error: "OllamaError"),
            Operation(method: "get", path: "/api/version", tag: ollama, summary: "The server's version", response: obj(["version": str]),
                      error: "OllamaError"),
            Operation(method: "post", path: "/api/embed", tag: ollama, summary: "Embeddings of one text or several (truncate defaults to true)",
                      request: obj(["model": str, "input": oneOf([str, arr(str)]), "truncate": bool, "dimensions": int, "keep_alive": any],
                                   required: ["model"]),
                      response: obj(["model": str, "embeddings": arr(arr(num)), "total_duration": int, "load_duration": int,
                                     "prompt_eval_count": int]), error: "OllamaError"),
            Operation(method: "post", path: "/api/embeddings", tag: ollama, summary: "The embedding of one prompt (Ollama's older endpoint)",
                      request: obj(["model": str, "prompt": str, "keep_alive": any], required: ["model"]),
                      response: obj(["embedding": arr(num)]), error: "OllamaError"),
            Operation(method: "post", path: "/api/v1/embeddings", tag: native, summary: "Embeddings (native; truncate defaults to false)",
                      request: obj(["model": str, "input": oneOf([str, arr(str)]), "truncate": bool], required: ["model", "input"]),
                      response: obj(["model": str, "embeddings": arr(arr(num)), "prompt_tokens": int, "route": str])),
            Operation(method: "post", path: "/api/v1/generate", tag: native, summary: "A completion (native)",
                      request: obj(["model": str, "prompt": str, "system": str, "raw": bool, "max_tokens": int, "temperature": num,
                                    "stream": bool, "grammar": str, "response_format": ref("ResponseFormat"), "lora": ref("LoRA")], required: ["model", "prompt"]),
                      response: obj(["response": str, "model": str, "tokens_used": int, "finish_reason": str, "reasoning": str]), streams: nd),
            Operation(method: "get", path: "/api/v1/streams/{id}", tag: native,
                      summary: "The rest of a stream after a dropped connection (Last-Event-ID header, or after=N), in its own format",
                      streams: sse + nd, responseType: "text/event-stream"),
            Operation(method: "delete", path: "/api/v1/streams/{id}", tag: native, summary: "Cancel a stream from any connection",
                      response: obj(["id": str, "object": str, "status": str], required: ["id", "object", "status"])),
            Operation(method: "post", path: "/api/v1/webhooks/telegram/{bot}", tag: native,
                      summary: "Where Telegram delivers a bot's updates (X-Telegram-Bot-Api-Secret-Token; no API key)",
                      request: obj(["update_id": int, "message": obj([:])], required: ["update_id"])),
            Operation(method: "get", path: "/api/v1/ws", tag: native,
                      summary: "The native API over a WebSocket (upgrade; JSON messages: chat, generate, resume, cancel, ping); a plain GET is answered 426"),
            Operation(method: "post", path: "/api/v1/chat", tag: native, summary: "A chat answer (native)",
                      request: obj(["model": str, "messages": arr(ref("ChatMessage")), "tools": arr(ref("Tool")), "max_tokens": int,
                                    "stream": bool, "grammar": str, "response_format": ref("ResponseFormat"), "lora": ref("LoRA"),
                                    "session": ["type": "string", "pattern": "^[A-Za-z0-9._:@-]{1,128}$"]], required: ["model", "messages"]),
                      response: obj(["response": str, "model": str, "tokens_used": int, "finish_reason": str, "tool_calls": arr(ref("ToolCall")),
                                     "session": obj(["id": str, "conversation_id": str, "history_messages": int, "trimmed_messages": int,
                                                     "trimmed_turns": int, "stored": bool])]),
                      streams: nd),
            Operation(method: "get", path: "/api/v1/models", tag: native, summary: "Models with their files and states",
                      response: obj(["models": arr(obj([:]))])),
            Operation(method: "post", path: "/api/v1/models/load", tag: native, summary: "Load a model (admin key)", request: ref("ModelName")),
            Operation(method: "post", path: "/api/v1/models/unload", tag: native, summary: "Unload a model (admin key)", request: ref("ModelName")),
            Operation(method: "get", path: "/api/v1/health", tag: native, summary: "Status, models, memory, deployments"),
            Operation(method: "get", path: "/lora-adapters", tag: native, summary: "A model's LoRA adapters and default scales (llama-server's; admin key)",
                      response: arr(obj(["id": int, "path": str, "scale": num])), query: ["model"]),
            Operation(method: "post", path: "/lora-adapters", tag: native, summary: "Set a model's adapters' default scales (llama-server's; admin key)",
                      request: ref("LoRA"), response: obj(["success": bool]), query: ["model"]),
            Operation(method: "get", path: "/api/v1/metrics", tag: native, summary: "Per-model counts and speeds"),
            Operation(method: "get", path: "/api/v1/usage", tag: native, summary: "The calling key's usage"),
            Operation(method: "get", path: "/admin/usage", tag: admin, summary: "Usage of every key"),
            Operation(method: "get", path: "/admin/keys", tag: admin, summary: "The API keys"),
            Operation(method: "post", path: "/admin/keys", tag: admin, summary: "Create a key",
                      request: obj(["name": str, "rpm": int, "tpm": int, "budget_tokens": int, "budget_usd": num, "models": arr(str),
                                    "local_only": bool, "allowed_ips": arr(str), "expires": str], required: ["name"])),
            Operation(method: "get", path: "/admin/keys/{key}", tag: admin, summary: "One key"),
            Operation(method: "delete", path: "/admin/keys/{key}", tag: admin, summary: "Delete a key"),
            Operation(method: "post", path: "/admin/keys/{key}/revoke", tag: admin, summary: "Revoke a key"),
            Operation(method: "post", path: "/admin/keys/{key}/rotate", tag: admin, summary: "Rotate a key", request: obj(["expires": str])),
            Operation(method: "get", path: "/admin/profile", tag: admin, summary: "The active configuration profile"),
            Operation(method: "post", path: "/admin/profile", tag: admin, summary: "Switch the configuration profile",
                      request: obj(["profile": ["type": ["string", "null"]]])),
        ]
    }

    /// The methods the server takes on `path` (a concrete path: `{param}` segments match any one segment), in
    /// the order HTTP lists them; empty for a path it does not serve.
    static func methods(for path: String) -> [String] {
        let segments = path.split(separator: "/", omittingEmptySubsequences: false)
        var found = Set<String>()
        for op in operations {
            let pattern = op.path.split(separator: "/", omittingEmptySubsequences: false)
            guard pattern.count == segments.count else { continue }
            if zip(pattern, segments).allSatisfy({ p, s in (p.hasPrefix("{") && p.hasSuffix("}") && !s.isEmpty) || p == s }) {
                found.insert(op.method.uppercased())
            }
        }
        return ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"].filter(found.contains)
    }

    /// The document, as JSON.
    static let json: Data = {
        var paths: [String: [String: Any]] = [:]
        for op in operations {
            var o: [String: Any] = ["summary": op.summary, "tags": [op.tag], "operationId": "\(op.method)\(op.path)"]
            var content: [String: Any] = [op.responseType: op.responseType == "application/json" ? ["schema": op.response] : [:]]
            for s in op.streams { content[s] = ["schema": ["type": "string", "description": "one event or line per piece"]] }
            o["responses"] = [
                "200": ["description": "the answer", "content": content],
                "default": ["description": "an error", "content": ["application/json": ["schema": ref(op.error)]]],
            ]
            if let r = op.request { o["requestBody"] = ["required": true, "content": [op.requestType: ["schema": r]]] }
            let params = op.path.split(separator: "/").filter { $0.hasPrefix("{") }.map { p -> [String: Any] in
                ["name": String(p.dropFirst().dropLast()), "in": "path", "required": true, "schema": str]
            } + op.query.map { ["name": $0, "in": "query", "required": true, "schema": str] }
            if !params.isEmpty { o["parameters"] = params }
            paths[op.path, default: [:]][op.method] = o
        }
        let doc: [String: Any] = [
            "openapi": "3.1.0",
            "info": ["title": "Switchyard", "version": OllamaSurface.version,
                     "description": "OpenAI, Ollama, Anthropic and native APIs over local models and routed providers."],
            "paths": paths,
            "components": [
                "schemas": components,
                "securitySchemes": ["bearer": ["type": "http", "scheme": "bearer"], "apiKey": ["type": "apiKey", "in": "header", "name": "x-api-key"]],
            ],
            "security": [["bearer": [String]()], ["apiKey": [String]()], [String: Any]()],
        ]
        return (try? JSONSerialization.data(withJSONObject: doc, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
    }()

    /// A page listing the operations, made from the document.
    static let page: String = {
        func esc(_ s: String) -> String {
            s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
        }
        var html = "<!doctype html><html><head><meta charset=\"utf-8\"><title>Switchyard API</title><style>"
            + "body{font-family:system-ui,sans-serif;max-width:60em;margin:2em auto;padding:0 1em}code{background:#f3f3f3;padding:0 .2em}"
            + "td{padding:.2em .6em;vertical-align:top}h2{margin-top:1.5em}</style></head><body><h1>Switchyard API</h1>"
            + "<p>The machine-readable description: <a href=\"/openapi.json\"><code>/openapi.json</code></a> (OpenAPI 3.1).</p>"
        var tags: [String] = []
        for op in operations where !tags.contains(op.tag) { tags.append(op.tag) }
        for tag in tags {
            html += "<h2>\(esc(tag))</h2><table>"
            for op in operations where op.tag == tag {
                var fields = ""
                if let r = op.request, let props = (r["properties"] as? [String: Any]) ?? ((r["$ref"] as? String).flatMap {
                    (components[String($0.split(separator: "/").last ?? "")] as? [String: Any])?["properties"] as? [String: Any]
                }) {
                    fields = props.keys.sorted().map { "<code>\(esc($0))</code>" }.joined(separator: " ")
                }
                html += "<tr><td><code>\(op.method.uppercased()) \(esc(op.path))</code></td><td>\(esc(op.summary))"
                    + (op.streams.isEmpty ? "" : " — streams \(op.streams.joined(separator: ", "))")
                    + (fields.isEmpty ? "" : "<br>\(fields)") + "</td></tr>"
            }
            html += "</table>"
        }
        return html + "</body></html>"
    }()

    static func register(on router: Router<GatewayContext>) {
        router.get("/openapi.json") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: json)))
        }
        router.get("/docs") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8"], body: ResponseBody(byteBuffer: ByteBuffer(string: page)))
        }
    }
}
