/** Builds a multipart/form-data body by hand (what a browser sends for a file input). */
export function multipartBody(
  fileName: string,
  bytes: Buffer,
  type = 'image/jpeg',
): { body: Buffer; contentType: string } {
  const boundary = '----blastwatchtest' + Math.random().toString(16).slice(2);
  const head = Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${fileName.replace(/"/g, '%22')}"\r\n` +
      `Content-Type: ${type}\r\n\r\n`,
  );
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  return {
    body: Buffer.concat([head, bytes, tail]),
    contentType: `multipart/form-data; boundary=${boundary}`,
  };
}
