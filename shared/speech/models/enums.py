"""String enums of the Speech wire formats.

Every enum is a ``StrEnum`` (a ``str`` subclass), so members compare equal to the wire string
and serialize as it. Response models type these fields as :data:`OpenEnum` (``X | str``): a
value a newer service adds still parses, as a plain string. Request models use the enum
alone, so a typo fails before the request is sent.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, TypeVar

from pydantic import Field

_E = TypeVar("_E", bound=StrEnum)

#: ``X | str`` for response fields: a known value becomes the member, an unknown one stays a
#: ``str``. The union is tried left to right because pydantic's default ("smart") mode would
#: prefer ``str``, an exact match for JSON text, and never produce the member.
OpenEnum = Annotated[_E | str, Field(union_mode="left_to_right")]

# ---- Batch transcription REST API (speechtotext 2024-11-15 / 2025-10-15 definitions) ----


class Status(StrEnum):
    """State of a long-running entity (transcription, model); wire values from the spec."""

    NOT_STARTED = "NotStarted"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


class PunctuationMode(StrEnum):
    """How batch transcription punctuates (`properties.punctuationMode`)."""

    NONE = "None"
    DICTATED = "Dictated"
    AUTOMATIC = "Automatic"
    DICTATED_AND_AUTOMATIC = "DictatedAndAutomatic"


class ProfanityFilterMode(StrEnum):
    """How batch and fast transcription treat profanity (`profanityFilterMode`)."""

    NONE = "None"
    REMOVED = "Removed"
    TAGS = "Tags"
    MASKED = "Masked"


class LanguageIdentificationMode(StrEnum):
    """Batch language identification mode (`languageIdentification.mode`)."""

    CONTINUOUS = "Continuous"
    SINGLE = "Single"


class FileKind(StrEnum):
    """Kind of a file listed under a transcription (`File.kind`)."""

    DATASET_REPORT = "DatasetReport"
    AUDIO = "Audio"
    LANGUAGE_DATA = "LanguageData"
    PRONUNCIATION_DATA = "PronunciationData"
    ACOUSTIC_DATA_ARCHIVE = "AcousticDataArchive"
    ACOUSTIC_DATA_TRANSCRIPTION_V2 = "AcousticDataTranscriptionV2"
    TRANSCRIPTION = "Transcription"
    TRANSCRIPTION_REPORT = "TranscriptionReport"
    EVALUATION_DETAILS = "EvaluationDetails"
    MODEL_REPORT = "ModelReport"
    OUTPUT_FORMATTING_DATA = "OutputFormattingData"


class DatasetKind(StrEnum):
    """Kind of a custom-speech dataset (`features.supportsAdaptationsWith`)."""

    LANGUAGE = "Language"
    ACOUSTIC = "Acoustic"
    PRONUNCIATION = "Pronunciation"
    AUDIO_FILES = "AudioFiles"
    LANGUAGE_MARKDOWN = "LanguageMarkdown"
    OUTPUT_FORMATTING = "OutputFormatting"


class OutputFormatType(StrEnum):
    """Output format a model supports (`features.supportedOutputFormats`)."""

    LEXICAL = "Lexical"
    DISPLAY = "Display"


class ErrorCode(StrEnum):
    """Top-level error code of an `Error` response body."""

    INVALID_REQUEST = "InvalidRequest"
    INVALID_ARGUMENT = "InvalidArgument"
    INTERNAL_SERVER_ERROR = "InternalServerError"
    SERVICE_UNAVAILABLE = "ServiceUnavailable"
    NOT_FOUND = "NotFound"
    PIPELINE_ERROR = "PipelineError"
    CONFLICT = "Conflict"
    INTERNAL_COMMUNICATION_FAILED = "InternalCommunicationFailed"
    FORBIDDEN = "Forbidden"
    NOT_ALLOWED = "NotAllowed"
    UNAUTHORIZED = "Unauthorized"
    UNSUPPORTED_MEDIA_TYPE = "UnsupportedMediaType"
    TOO_MANY_REQUESTS = "TooManyRequests"
    UNPROCESSABLE_ENTITY = "UnprocessableEntity"


class DetailedErrorCode(StrEnum):
    """Detailed code of an `innerError`; the 2025-10-15 spec list, a superset of 2024-11-15."""

    INVALID_PARAMETER_VALUE = "InvalidParameterValue"
    INVALID_REQUEST_BODY_FORMAT = "InvalidRequestBodyFormat"
    EMPTY_REQUEST = "EmptyRequest"
    MISSING_INPUT_RECORDS = "MissingInputRecords"
    INVALID_DOCUMENT = "InvalidDocument"
    MODEL_VERSION_INCORRECT = "ModelVersionIncorrect"
    INVALID_DOCUMENT_BATCH = "InvalidDocumentBatch"
    UNSUPPORTED_LANGUAGE_CODE = "UnsupportedLanguageCode"
    DATA_IMPORT_FAILED = "DataImportFailed"
    IN_USE_VIOLATION = "InUseViolation"
    INVALID_LOCALE = "InvalidLocale"
    INVALID_BASE_MODEL = "InvalidBaseModel"
    INVALID_ADAPTATION_MAPPING = "InvalidAdaptationMapping"
    INVALID_DATASET = "InvalidDataset"
    INVALID_TEST = "InvalidTest"
    FAILED_DATASET = "FailedDataset"
    INVALID_MODEL = "InvalidModel"
    INVALID_TRANSCRIPTION = "InvalidTranscription"
    INVALID_PAYLOAD = "InvalidPayload"
    INVALID_PARAMETER = "InvalidParameter"
    ENDPOINT_WITHOUT_LOGGING = "EndpointWithoutLogging"
    INVALID_PERMISSIONS = "InvalidPermissions"
    INVALID_PREREQUISITE = "InvalidPrerequisite"
    INVALID_PRODUCT_ID = "InvalidProductId"
    INVALID_SUBSCRIPTION = "InvalidSubscription"
    INVALID_PROJECT = "InvalidProject"
    INVALID_PROJECT_KIND = "InvalidProjectKind"
    INVALID_RECORDINGS_URI = "InvalidRecordingsUri"
    ONLY_ONE_OF_URLS_OR_CONTAINER_OR_DATASET = "OnlyOneOfUrlsOrContainerOrDataset"
    EXCEEDED_NUMBER_OF_RECORDINGS_URIS = "ExceededNumberOfRecordingsUris"
    INVALID_CHANNELS = "InvalidChannels"
    MODEL_MISMATCH = "ModelMismatch"
    PROJECT_GENDER_MISMATCH = "ProjectGenderMismatch"
    MODEL_DEPRECATED = "ModelDeprecated"
    MODEL_EXISTS = "ModelExists"
    MODEL_NOT_DEPLOYABLE = "ModelNotDeployable"
    ENDPOINT_NOT_UPDATABLE = "EndpointNotUpdatable"
    SINGLE_DEFAULT_ENDPOINT = "SingleDefaultEndpoint"
    ENDPOINT_CANNOT_BE_DEFAULT = "EndpointCannotBeDefault"
    INVALID_MODEL_URI = "InvalidModelUri"
    SUBSCRIPTION_NOT_FOUND = "SubscriptionNotFound"
    QUOTA_VIOLATION = "QuotaViolation"
    UNSUPPORTED_DELTA = "UnsupportedDelta"
    UNSUPPORTED_FILTER = "UnsupportedFilter"
    UNSUPPORTED_PAGINATION = "UnsupportedPagination"
    UNSUPPORTED_DYNAMIC_CONFIGURATION = "UnsupportedDynamicConfiguration"
    UNSUPPORTED_ORDER_BY = "UnsupportedOrderBy"
    NO_UTF8_WITH_BOM = "NoUtf8WithBom"
    MODEL_DEPLOYMENT_NOT_COMPLETE_STATE = "ModelDeploymentNotCompleteState"
    SKU_LIMITS_EXIST = "SkuLimitsExist"
    DEPLOYING_FAILED_MODEL = "DeployingFailedModel"
    UNSUPPORTED_TIME_RANGE = "UnsupportedTimeRange"
    INVALID_LOG_DATE = "InvalidLogDate"
    INVALID_LOG_ID = "InvalidLogId"
    INVALID_LOG_START_TIME = "InvalidLogStartTime"
    INVALID_LOG_END_TIME = "InvalidLogEndTime"
    INVALID_TOP_FOR_LOGS = "InvalidTopForLogs"
    INVALID_SKIP_TOKEN_FOR_LOGS = "InvalidSkipTokenForLogs"
    DELETE_NOT_ALLOWED = "DeleteNotAllowed"
    FORBIDDEN = "Forbidden"
    DEPLOY_NOT_ALLOWED = "DeployNotAllowed"
    UNEXPECTED_ERROR = "UnexpectedError"
    INVALID_COLLECTION = "InvalidCollection"
    INVALID_CALLBACK_URI = "InvalidCallbackUri"
    INVALID_SAS_VALIDITY_DURATION = "InvalidSasValidityDuration"
    INACCESSIBLE_CUSTOMER_STORAGE = "InaccessibleCustomerStorage"
    UNSUPPORTED_CLASS_BASED_ADAPTATION = "UnsupportedClassBasedAdaptation"
    INVALID_WEB_HOOK_EVENT_KIND = "InvalidWebHookEventKind"
    INVALID_TIME_TO_LIVE = "InvalidTimeToLive"
    INVALID_SOURCE_AZURE_RESOURCE_ID = "InvalidSourceAzureResourceId"
    MODEL_COPY_AUTHORIZATION_EXPIRED = "ModelCopyAuthorizationExpired"
    ENDPOINT_LOGGING_NOT_SUPPORTED = "EndpointLoggingNotSupported"
    NO_LANGUAGE_IDENTIFIED = "NoLanguageIdentified"
    MULTIPLE_LANGUAGES_IDENTIFIED = "MultipleLanguagesIdentified"
    INVALID_AUDIO_FORMAT = "InvalidAudioFormat"
    BAD_CHANNEL_CONFIGURATION = "BadChannelConfiguration"
    INVALID_CHANNEL_SPECIFICATION = "InvalidChannelSpecification"
    AUDIO_LENGTH_LIMIT_EXCEEDED = "AudioLengthLimitExceeded"
    EMPTY_AUDIO_FILE = "EmptyAudioFile"


# ---- Short-audio REST API (speech/recognition/conversation/cognitiveservices/v1) ----


class RecognitionStatus(StrEnum):
    """Outcome of a short-audio recognition (`RecognitionStatus`)."""

    SUCCESS = "Success"
    NO_MATCH = "NoMatch"
    INITIAL_SILENCE_TIMEOUT = "InitialSilenceTimeout"
    BABBLE_TIMEOUT = "BabbleTimeout"
    ERROR = "Error"


class OutputFormat(StrEnum):
    """Short-audio `format` query parameter."""

    SIMPLE = "simple"
    DETAILED = "detailed"


class ShortAudioProfanity(StrEnum):
    """Short-audio `profanity` query parameter (lower case, unlike the batch enum)."""

    MASKED = "masked"
    REMOVED = "removed"
    RAW = "raw"


class GradingSystem(StrEnum):
    """Pronunciation assessment score scale: 0-5 or 0-100."""

    FIVE_POINT = "FivePoint"
    HUNDRED_MARK = "HundredMark"


class Granularity(StrEnum):
    """Level down to which pronunciation assessment reports scores."""

    PHONEME = "Phoneme"
    WORD = "Word"
    FULL_TEXT = "FullText"


class Dimension(StrEnum):
    """Pronunciation assessment output dimensions."""

    BASIC = "Basic"
    COMPREHENSIVE = "Comprehensive"


class PronunciationErrorType(StrEnum):
    """Word-level `ErrorType` of pronunciation assessment.

    The last three come with prosody assessment; they are listed in the "Use pronunciation
    assessment" article (how-to-pronunciation-assessment.md, "Scripted assessment results").
    """

    NONE = "None"
    OMISSION = "Omission"
    INSERTION = "Insertion"
    MISPRONUNCIATION = "Mispronunciation"
    UNEXPECTED_BREAK = "UnexpectedBreak"
    MISSING_BREAK = "MissingBreak"
    MONOTONE = "Monotone"
