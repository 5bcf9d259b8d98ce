package admin

import (
	"errors"
	"fmt"
	"net/http"
)

// Error is an admin API error: what a handler returns to answer with a
// status and a code, and what the client returns for a 4xx/5xx answer.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	// Cause is the component's error this one answers for (not sent).
	Cause error `json:"-"`
}

// Unwrap is the cause.
func (e *Error) Unwrap() error { return e.Cause }

func (e *Error) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("%s: %s (HTTP %d)", e.Code, e.Message, e.Status)
	}
	return e.Code + ": " + e.Message
}

// Errorf makes an Error.
func Errorf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// BadRequest is a 400 InvalidArgument.
func BadRequest(format string, args ...any) *Error {
	return Errorf(http.StatusBadRequest, CodeInvalidArgument, format, args...)
}

// The error codes clients branch on. Handlers may answer others; these
// are the ones with a meaning beyond their message.
const (
	CodeInvalidArgument   = "InvalidArgument"
	CodeAccessDenied      = "AccessDenied"
	CodeNoSuchOperation   = "NoSuchAdminOperation"
	CodeNoSuchDevice      = "NoSuchDevice"
	CodeLayoutDoesNotFit  = "LayoutDoesNotFit"
	CodeNoSuchVolume      = "NoSuchVolume"
	CodeNoSuchUser        = "NoSuchUser"
	CodeNoSuchKey         = "NoSuchKey"
	CodeNoSuchBucket      = "NoSuchBucket"
	CodeVolumeInUse       = "VolumeInUse"
	CodeRebalanceRunning  = "RebalanceInProgress"
	CodeNoRebalance       = "NoRebalance"
	CodeInternalError     = "InternalError"
	CodeSlowDown          = "SlowDown"
	CodeBodyHashMismatch  = "XAmzContentSHA256Mismatch"
	CodeNotLocalDevice    = "NotLocalDevice"
	CodeNoPreviousRing    = "NoPreviousRing"
	CodeStorageClassInUse = "StorageClassInUse"
)

// HasCode reports whether err is an admin Error with code.
func HasCode(err error, code string) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}
