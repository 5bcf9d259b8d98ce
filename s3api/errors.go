package s3api

import (
	"context"
	"encoding/xml"
	"errors"
	"net/http"
	"os"

	"github.com/strata-storage/strata/objectstore"
	"github.com/strata-storage/strata/s3api/sigv4"
)

// APIError is an S3 error response.
type APIError struct {
	Code    string
	Message string
	Status  int
}

func (e *APIError) Error() string { return e.Code + ": " + e.Message }

// errorTable gives status and default message per S3 error code.
var errorTable = map[string]APIError{
	"AccessDenied":                        {Status: 403, Message: "Access Denied"},
	"AuthorizationHeaderMalformed":        {Status: 400, Message: "The authorization header is malformed."},
	"AuthorizationQueryParametersError":   {Status: 400, Message: "Error parsing the X-Amz-Credential parameter."},
	"BadDigest":                           {Status: 400, Message: "The Content-MD5 or checksum you specified did not match what we received."},
	"BucketAlreadyOwnedByYou":             {Status: 409, Message: "Your previous request to create the named bucket succeeded and you already own it."},
	"BucketAlreadyExists":                 {Status: 409, Message: "The requested bucket name is not available. The bucket namespace is shared by all users of the system. Please select a different name and try again."},
	"TooManyBuckets":                      {Status: 400, Message: "You have attempted to create more buckets than allowed."},
	"QuotaExceeded":                       {Status: 403, Message: "Quota exceeded."},
	"BucketNotEmpty":                      {Status: 409, Message: "The bucket you tried to delete is not empty."},
	"EntityTooLarge":                      {Status: 400, Message: "Your proposed upload exceeds the maximum allowed size."},
	"EntityTooSmall":                      {Status: 400, Message: "Your proposed upload is smaller than the minimum allowed object size."},
	"IncompleteBody":                      {Status: 400, Message: "You did not provide the number of bytes specified by the Content-Length HTTP header."},
	"InternalError":                       {Status: 500, Message: "We encountered an internal error. Please try again."},
	"InvalidAccessKeyId":                  {Status: 403, Message: "The AWS access key ID you provided does not exist in our records or is disabled."},
	"InvalidArgument":                     {Status: 400, Message: "Invalid Argument"},
	"InvalidBucketName":                   {Status: 400, Message: "The specified bucket is not valid."},
	"InvalidDigest":                       {Status: 400, Message: "The Content-MD5 you specified is not valid."},
	"InvalidPart":                         {Status: 400, Message: "One or more of the specified parts could not be found. The part might not have been uploaded, or the specified entity tag might not have matched the part's entity tag."},
	"InvalidPartOrder":                    {Status: 400, Message: "The list of parts was not in ascending order. The parts list must be specified in order by part number."},
	"InvalidTag":                          {Status: 400, Message: "The tag provided was not a valid tag."},
	"InvalidStorageClass":                 {Status: 400, Message: "The storage class you specified is not valid."},
	"InvalidToken":                        {Status: 400, Message: "The provided token is malformed or otherwise invalid."},
	"NoSuchTagSet":                        {Status: 404, Message: "The TagSet does not exist"},
	"NoSuchCORSConfiguration":             {Status: 404, Message: "The CORS configuration does not exist"},
	"AccessForbidden":                     {Status: 403, Message: "CORSResponse: This CORS request is not allowed."},
	"BadRequest":                          {Status: 400, Message: "Bad Request"},
	"MissingSecurityHeader":               {Status: 400, Message: "Your request was missing a required header."},
	"MalformedPolicy":                     {Status: 400, Message: "Policies must be valid JSON and the first byte must be '{'"},
	"NoSuchBucketPolicy":                  {Status: 404, Message: "The bucket policy does not exist"},
	"PolicyTooLarge":                      {Status: 400, Message: "Policy exceeds the maximum allowed document size."},
	"InvalidPolicyDocument":               {Status: 400, Message: "The content of the form does not meet the conditions specified in the policy document."},
	"MalformedPOSTRequest":                {Status: 400, Message: "The body of your POST request is not well-formed multipart/form-data."},
	"MaxPostPreDataLengthExceeded":        {Status: 400, Message: "Your POST request fields preceding the upload file were too large."},
	"InvalidPartNumber":                   {Status: 416, Message: "The requested partnumber is not satisfiable"},
	"InvalidRange":                        {Status: 416, Message: "The requested range is not satisfiable"},
	"InvalidRequest":                      {Status: 400, Message: "Invalid Request"},
	"KeyTooLongError":                     {Status: 400, Message: "Your key is too long."},
	"MalformedXML":                        {Status: 400, Message: "The XML you provided was not well-formed or did not validate against our published schema."},
	"InvalidBucketAclWithObjectOwnership": {Status: 400, Message: "Bucket cannot have ACLs set with ObjectOwnership's BucketOwnerEnforced setting"},
	"MalformedACLError":                   {Status: 400, Message: "The XML you provided was not well-formed or did not validate against our published schema."},
	"MetadataTooLarge":                    {Status: 400, Message: "Your metadata headers exceed the maximum allowed metadata size."},
	"MethodNotAllowed":                    {Status: 405, Message: "The specified method is not allowed against this resource."},
	"MissingContentLength":                {Status: 411, Message: "You must provide the Content-Length HTTP header."},
	"NoSuchBucket":                        {Status: 404, Message: "The specified bucket does not exist."},
	"NoSuchVersion":                       {Status: 404, Message: "The specified version does not exist."},
	"NoSuchKey":                           {Status: 404, Message: "The specified key does not exist."},
	"NoSuchUpload":                        {Status: 404, Message: "The specified multipart upload does not exist. The upload ID might be invalid, or the multipart upload might have been aborted or completed."},
	"PreconditionFailed":                  {Status: 412, Message: "At least one of the pre-conditions you specified did not hold"},
	"NotImplemented":                      {Status: 501, Message: "A header or query you provided implies functionality that is not implemented."},
	"RequestTimeTooSkewed":                {Status: 403, Message: "The difference between the request time and the server's time is too large."},
	"ServiceUnavailable":                  {Status: 503, Message: "Not enough storage devices are available to serve the request; please retry."},
	"SignatureDoesNotMatch":               {Status: 403, Message: "The request signature we calculated does not match the signature you provided. Check your key and signing method."},
	"SlowDown":                            {Status: 503, Message: "Please reduce your request rate."},
	"XAmzContentSHA256Mismatch":           {Status: 400, Message: "The provided 'x-amz-content-sha256' header does not match what was computed."},
	"InsufficientStorage":                 {Status: 507, Message: "The storage devices have no space left for this object."},
	"RequestTimeout":                      {Status: 400, Message: "Your socket connection to the server was not read from or written to within the timeout period."},
}

// apiErr builds an APIError for code, with an optional specific message.
func apiErr(code string, msg ...string) *APIError {
	e, ok := errorTable[code]
	if !ok {
		e = errorTable["InternalError"]
		code = "InternalError"
	}
	e.Code = code
	if len(msg) > 0 && msg[0] != "" {
		e.Message = msg[0]
	}
	return &e
}

// toAPIError maps any error from below to the S3 error a client gets.
func toAPIError(err error) *APIError {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae
	}
	var se *sigv4.Error
	if errors.As(err, &se) {
		return apiErr(se.Code, se.Message)
	}
	for _, m := range []struct {
		err  error
		code string
	}{
		{objectstore.ErrNoSuchBucket, "NoSuchBucket"},
		{objectstore.ErrBucketExists, "BucketAlreadyOwnedByYou"},
		{objectstore.ErrBucketNotEmpty, "BucketNotEmpty"},
		{objectstore.ErrInvalidBucketName, "InvalidBucketName"},
		{objectstore.ErrNoSuchKey, "NoSuchKey"},
		{objectstore.ErrNoSuchVersion, "NoSuchVersion"},
		{objectstore.ErrKeyTooLong, "KeyTooLongError"},
		{objectstore.ErrInvalidKey, "InvalidArgument"},
		{objectstore.ErrNoSuchUpload, "NoSuchUpload"},
		{objectstore.ErrInvalidPart, "InvalidPart"},
		{objectstore.ErrInvalidPartOrder, "InvalidPartOrder"},
		{objectstore.ErrEntityTooSmall, "EntityTooSmall"},
		{objectstore.ErrEntityTooLarge, "EntityTooLarge"},
		{objectstore.ErrIncompleteBody, "IncompleteBody"},
		{objectstore.ErrInvalidPartNumber, "InvalidArgument"},
		{objectstore.ErrWriteQuorum, "ServiceUnavailable"},
		{objectstore.ErrReadQuorum, "ServiceUnavailable"},
		{objectstore.ErrDamaged, "InternalError"},
		{objectstore.ErrStorageFull, "InsufficientStorage"},
		{objectstore.ErrBadDigest, "BadDigest"},
		{os.ErrDeadlineExceeded, "RequestTimeout"},
		{context.Canceled, "RequestTimeout"},
		{context.DeadlineExceeded, "RequestTimeout"},
	} {
		if errors.Is(err, m.err) {
			if m.err == objectstore.ErrInvalidPartNumber {
				return apiErr(m.code, "Part number must be an integer between 1 and 10000, inclusive.")
			}
			if m.err == objectstore.ErrDamaged {
				return apiErr(m.code, "The object's data is damaged beyond repair (more shards fail their checksums than parity covers); restore it from another copy.")
			}
			if m.err == objectstore.ErrInvalidKey {
				return apiErr(m.code, "Object keys must be valid UTF-8 and must not contain NUL.")
			}
			return apiErr(m.code)
		}
	}
	return apiErr("InternalError")
}

type errorBody struct {
	XMLName    xml.Name `xml:"Error"`
	Code       string   `xml:"Code"`
	Message    string   `xml:"Message"`
	BucketName string   `xml:"BucketName,omitempty"`
	Key        string   `xml:"Key,omitempty"`
	Resource   string   `xml:"Resource"`
	RequestID  string   `xml:"RequestId"`
	HostID     string   `xml:"HostId"`
}

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	e := toAPIError(err)
	rc := reqCtx(r)
	if e.Code == "InternalError" {
		s.log.Error("internal error", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if rc != nil {
		rc.code = e.Code
	}
	w.Header().Set("Content-Type", "application/xml")
	if e.Code == "InvalidRange" {
		w.Header().Set("Accept-Ranges", "bytes")
	}
	w.WriteHeader(e.Status)
	if r.Method == http.MethodHead {
		return
	}
	body := errorBody{Code: e.Code, Message: e.Message, Resource: r.URL.Path}
	if rc != nil {
		body.BucketName, body.Key, body.RequestID, body.HostID = rc.bucket, rc.key, rc.id, rc.id
	}
	w.Write([]byte(xml.Header))
	xml.NewEncoder(w).Encode(body)
}
