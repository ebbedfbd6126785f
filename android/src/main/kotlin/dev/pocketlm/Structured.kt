package dev.pocketlm

import dev.pocketlm.ffi.OutputConstraint
import dev.pocketlm.ffi.Reply
import dev.pocketlm.ffi.RequestOptions
import dev.pocketlm.ffi.StructuredValue
import dev.pocketlm.ffi.ToolChoice
import dev.pocketlm.ffi.ToolResult
import dev.pocketlm.ffi.ToolSpec
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.filterIsInstance
import kotlinx.coroutines.flow.single
import kotlinx.serialization.ExperimentalSerializationApi
import kotlinx.serialization.KSerializer
import kotlinx.serialization.SerialInfo
import kotlinx.serialization.descriptors.PolymorphicKind
import kotlinx.serialization.descriptors.PrimitiveKind
import kotlinx.serialization.descriptors.SerialDescriptor
import kotlinx.serialization.descriptors.SerialKind
import kotlinx.serialization.descriptors.StructureKind
import kotlinx.serialization.json.Json
import kotlinx.serialization.json.JsonArray
import kotlinx.serialization.json.JsonObject
import kotlinx.serialization.json.JsonPrimitive
import kotlinx.serialization.json.buildJsonObject
import kotlinx.serialization.json.put
import kotlinx.serialization.serializer

/** Describes a property or class to the model (written into the JSON Schema as `description`). */
@OptIn(ExperimentalSerializationApi::class)
@SerialInfo
@Target(AnnotationTarget.PROPERTY, AnnotationTarget.CLASS)
annotation class Guide(val description: String)

/** The JSON used to read typed answers: unknown keys are an error, as the schema forbids them. */
@PublishedApi
internal val answerJson = Json { ignoreUnknownKeys = false }

/**
 * The JSON Schema of a `@Serializable` type, from its [SerialDescriptor]: objects with
 * every non-default property required and no others, lists, maps, enums, nullable
 * values, and [Guide] descriptions. Sealed or open polymorphism cannot be enforced and
 * is refused with [LanguageModelException.InvalidConstraint].
 */
@OptIn(ExperimentalSerializationApi::class)
fun SerialDescriptor.toJsonSchema(): JsonObject {
    val schema = when (val kind = kind) {
        PrimitiveKind.STRING, PrimitiveKind.CHAR -> buildJsonObject { put("type", "string") }
        PrimitiveKind.BOOLEAN -> buildJsonObject { put("type", "boolean") }
        PrimitiveKind.BYTE, PrimitiveKind.SHORT, PrimitiveKind.INT, PrimitiveKind.LONG -> buildJsonObject { put("type", "integer") }
        PrimitiveKind.FLOAT, PrimitiveKind.DOUBLE -> buildJsonObject { put("type", "number") }
        SerialKind.ENUM -> buildJsonObject {
            put("type", "string")
            put("enum", JsonArray((0 until elementsCount).map { JsonPrimitive(getElementName(it)) }))
        }
        StructureKind.LIST -> buildJsonObject {
            put("type", "array")
            put("items", getElementDescriptor(0).toJsonSchema())
        }
        StructureKind.MAP -> buildJsonObject {
            put("type", "object")
            put("additionalProperties", getElementDescriptor(1).toJsonSchema())
        }
        StructureKind.CLASS, StructureKind.OBJECT -> buildJsonObject {
            put("type", "object")
            put("properties", buildJsonObject {
                for (i in 0 until elementsCount) {
                    val property = getElementDescriptor(i).toJsonSchema().withGuide(getElementAnnotations(i))
                    put(getElementName(i), property)
                }
            })
            put("required", JsonArray((0 until elementsCount).filter { !isElementOptional(it) }.map { JsonPrimitive(getElementName(it)) }))
            put("additionalProperties", false)
        }
        is PolymorphicKind, SerialKind.CONTEXTUAL -> throw LanguageModelException.InvalidConstraint(
            "$serialName is polymorphic",
            "the output constraint cannot be enforced: $serialName is polymorphic (use concrete @Serializable classes)",
        )
        else -> throw LanguageModelException.InvalidConstraint("$serialName has kind $kind", "cannot describe $serialName as a JSON Schema")
    }.withGuide(annotations)
    return if (isNullable) JsonObject(mapOf("anyOf" to JsonArray(listOf(schema, buildJsonObject { put("type", "null") })))) else schema
}

private fun JsonObject.withGuide(annotations: List<Annotation>): JsonObject {
    val guide = annotations.filterIsInstance<Guide>().firstOrNull() ?: return this
    return JsonObject(this + ("description" to JsonPrimitive(guide.description)))
}

/** Options constraining the answer to [serializer]'s JSON Schema. */
private fun <T> schemaOptions(serializer: KSerializer<T>) = RequestOptions(
    constraint = OutputConstraint.JsonSchema(serializer.descriptor.toJsonSchema().toString()),
    tools = emptyList(),
    toolChoice = ToolChoice.Auto,
)

/**
 * Answers [prompt] with a value of type [T], enforced while decoding by the JSON Schema
 * of [T]'s `@Serializable` descriptor. A value cut short by the token limit is
 * [LanguageModelException.StructuredOutputIncomplete].
 */
suspend inline fun <reified T> Conversation.respond(prompt: String): T = respond(prompt, serializer<T>())

/** [respond] with an explicit [serializer]. */
suspend fun <T> Conversation.respond(prompt: String, serializer: KSerializer<T>): T {
    val reply = send(prompt, schemaOptions(serializer)).filterIsInstance<ChatEvent.Done>().single().reply
    return answerJson.decodeFromString(serializer, reply.structuredJson())
}

/**
 * Streams the answer to [prompt] as a value of type [T]: [ChatEvent.Snapshot]s of the
 * JSON written so far (shown as it grows), then [ChatEvent.Done]; decode the final
 * value with [decodeAnswer].
 */
inline fun <reified T> Conversation.streamResponse(prompt: String): Flow<ChatEvent> = streamResponse(prompt, serializer<T>())

/** [streamResponse] with an explicit [serializer]. */
fun <T> Conversation.streamResponse(prompt: String, serializer: KSerializer<T>): Flow<ChatEvent> = send(prompt, schemaOptions(serializer))

/** The typed value of a finished structured answer. */
inline fun <reified T> Reply.decodeAnswer(): T = answerJson.decodeFromString(serializer<T>(), structuredJson())

/** The JSON text of a structured answer. */
fun Reply.structuredJson(): String = when (val s = structured) {
    is StructuredValue.Json -> s.json
    else -> throw LanguageModelException.InvalidConstraint("no JSON value", "this answer has no JSON value (it was not constrained to JSON)")
}

/**
 * A tool the model may call: its arguments are decoded into [A] (a `@Serializable`
 * class, whose schema constrains the call), and [run] returns the result the model
 * reads (usually JSON). An exception from [run] goes back to the model as a failed
 * result, so it can retry or explain.
 */
class Tool<A>(
    val name: String,
    val description: String,
    private val arguments: KSerializer<A>,
    private val run: suspend (A) -> String,
) {
    internal fun spec() = ToolSpec(name, description, arguments.descriptor.toJsonSchema().toString())

    internal suspend fun call(argumentsJson: String): String = run(answerJson.decodeFromString(arguments, argumentsJson))

    companion object {
        /** A tool whose arguments are the `@Serializable` class [A]. */
        inline operator fun <reified A> invoke(name: String, description: String, noinline run: suspend (A) -> String): Tool<A> =
            Tool(name, description, serializer<A>(), run)
    }
}

/**
 * Answers [prompt], running [tools] for every call the model makes and sending the
 * results back, until it answers in text. [choice] applies to the first round; after
 * [maxRounds] rounds of calls it throws [LanguageModelException.ToolRoundsExceeded]
 * (the history keeps the completed rounds). [onEvent] sees every event (text, calls).
 */
suspend fun Conversation.respond(
    prompt: String,
    tools: List<Tool<*>>,
    choice: ToolChoice = ToolChoice.Auto,
    maxRounds: Int = 4,
    onEvent: (ChatEvent) -> Unit = {},
): Reply {
    val specs = tools.map { it.spec() }
    var options = RequestOptions(constraint = null, tools = specs, toolChoice = choice)
    var reply = collectReply(send(prompt, options), onEvent)
    var rounds = 0
    val answered = mutableSetOf<Pair<String, String>>()
    while (reply.toolCalls.isNotEmpty()) {
        if (rounds == maxRounds) {
            throw LanguageModelException.ToolRoundsExceeded(rounds, "the model was still calling tools after $rounds rounds")
        }
        rounds++
        // A round that only repeats answered calls is not run again: the model must answer in text.
        val repeated = reply.toolCalls.all { (it.name to it.argumentsJson) in answered }
        answered += reply.toolCalls.map { it.name to it.argumentsJson }
        val results = reply.toolCalls.map { call ->
            val tool = tools.firstOrNull { it.name == call.name }
            if (repeated) return@map ToolResult(call.id, call.name, REPEATED_CALL, isError = true)
            try {
                val content = tool?.call(call.argumentsJson) ?: error("no tool named ${call.name}")
                ToolResult(call.id, call.name, content, isError = false)
            } catch (e: kotlinx.coroutines.CancellationException) {
                throw e
            } catch (e: Exception) {
                ToolResult(call.id, call.name, "error: ${e.message}", isError = true)
            }
        }
        options = options.copy(toolChoice = if (repeated) ToolChoice.None else ToolChoice.Auto)
        reply = collectReply(sendToolResults(results, options), onEvent)
    }
    return reply
}

private const val REPEATED_CALL =
    "error: this call was already made with the same arguments; its result is above. Answer the user now."

private suspend fun collectReply(events: Flow<ChatEvent>, onEvent: (ChatEvent) -> Unit): Reply {
    var done: Reply? = null
    events.collect { event ->
        onEvent(event)
        if (event is ChatEvent.Done) done = event.reply
    }
    return done ?: error("the answer ended without a reply")
}

