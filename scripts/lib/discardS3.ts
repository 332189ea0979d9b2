/**
 * For `npm run bench` only: an endpoint that speaks just enough S3 for one backup (a multipart upload
 * and the manifest) and keeps nothing. It receives every byte over loopback as an S3 server would, but
 * neither hashes nor stores them, so a runner pass against it shows what the runner costs when the
 * server's own work is off this machine, as it is with S3. It checks no signature: never use it to test.
 */

import { once } from "node:events";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";

export interface DiscardS3 {
  endpoint: string;
  /** Body bytes received since the server started. */
  received(): number;
  stop(): Promise<void>;
}

export async function startDiscardS3(): Promise<DiscardS3> {
  let bytes = 0;
  let uploads = 0;
  const server = createServer((req, res) => {
    req.on("data", (chunk: Buffer) => (bytes += chunk.length));
    req.on("end", () => {
      const query = new URL(req.url ?? "/", "http://localhost").searchParams;
      res.setHeader("Content-Type", "application/xml");
      if (req.method === "POST" && query.has("uploads")) {
        res.end(`<?xml version="1.0" encoding="UTF-8"?><InitiateMultipartUploadResult><UploadId>discard-${++uploads}</UploadId></InitiateMultipartUploadResult>`);
      } else if (req.method === "POST" && query.has("uploadId")) {
        res.end(`<?xml version="1.0" encoding="UTF-8"?><CompleteMultipartUploadResult><ETag>"discarded"</ETag></CompleteMultipartUploadResult>`);
      } else if (req.method === "PUT") {
        res.setHeader("ETag", '"discarded"');
        res.end();
      } else {
        res.statusCode = req.method === "DELETE" ? 204 : 501;
        res.end();
      }
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    received: () => bytes,
    stop: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
